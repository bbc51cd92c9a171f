"""`hybridlens model CUTOUT.fits ... --cores N`: a folder of cutouts through the guarded loop in one command.

It writes the cutouts' list as a config file (results/lenses/command.yaml), on top of
config/config.yaml and any `--configfile` the user gives (reading settings, per-lens
entries), and runs the Snakemake target `results/lenses/catalogue.csv` from the
workflow's folder. `--dry-run` reads every cutout as the modelling job would and says
which would be modelled and which refused, and why, then shows Snakemake's plan.
"""

import argparse
import subprocess
import sys
from pathlib import Path

TARGET = "results/lenses/catalogue.csv"
COMMAND_CONFIG = "results/lenses/command.yaml"


def parser():
    top = argparse.ArgumentParser(prog="hybridlens", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    model = commands.add_parser("model", help="model FITS cutouts (the guarded hybrid loop), write the catalogue")
    model.add_argument("files", nargs="+", help="FITS cutouts (paths or quoted globs)")
    model.add_argument("--cores", type=int, default=1, help="cores for Snakemake (one lens per core)")
    model.add_argument(
        "--configfile", nargs="+", default=[], help="config files on top of config/config.yaml (reading settings)"
    )
    model.add_argument("--dry-run", action="store_true", help="say what would be modelled or refused, run nothing")
    model.add_argument("--directory", default=".", help="the hybridlens workflow's folder (holding its Snakefile)")
    return top


def cutout_paths(entries):
    """Absolute paths of the named files and globs, in order, each once."""
    import glob

    paths = []
    for entry in entries:
        matches = sorted(glob.glob(entry)) if any(c in entry for c in "*?[") else [entry]
        paths += [str(Path(match).resolve()) for match in matches if str(Path(match).resolve()) not in paths]
    return paths


def write_command_config(root, files):
    import yaml

    path = root / COMMAND_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"model_lenses": {"files": files}}, sort_keys=False))
    return path


def plan(root, configfiles):
    """[(name, reading or None, reason or None)]: each cutout read as its job would read it."""
    from hybridlens import config as hlconfig
    from hybridlens.own_lenses import cutouts
    from hybridlens.simulation.survey import Survey

    cfg = hlconfig.load(root / "config" / "config.yaml", *configfiles)
    survey = Survey.from_settings(hlconfig.survey_settings(cfg, "simulate_training"))
    out = []
    for name, spec in cutouts.specs(cfg["model_lenses"], root).items():
        try:
            cutout = cutouts.read_cutout(spec, survey, cfg["model_lenses"]["tolerances"])
        except cutouts.CutoutError as error:
            out.append((name, None, str(error)))
            continue
        reading = f'{cutout.image.shape[0]}x{cutout.image.shape[1]} pixels at {cutout.pixel_scale:.4g}"'
        reading += f", lens light: {spec.lens_light}, centre: {spec.centre}"
        out.append((name, reading, None))
    return out


def model(args, extra):
    root = Path(args.directory).resolve()
    if not (root / "Snakefile").exists():
        sys.exit(f"hybridlens: no Snakefile in {root}: run from the workflow's folder or pass --directory")
    files = cutout_paths(args.files)
    if not files:
        sys.exit("hybridlens: no cutout matches " + " ".join(args.files))
    user_configs = [str(Path(path).resolve()) for path in args.configfile]
    command_config = write_command_config(root, files)
    configs = [*user_configs, str(command_config)]
    snakemake = [sys.executable, "-m", "snakemake", TARGET, "--cores", str(args.cores), "--configfile", *configs]
    if args.dry_run:
        from hybridlens.config import ConfigError

        try:
            planned = plan(root, configs)
        except (ConfigError, ValueError) as error:
            sys.exit(f"hybridlens: {error}")
        for name, reading, reason in planned:
            print(f"model   {name}: {reading}" if reason is None else f"refuse  {name}: {reason}")
        refused = sum(reason is not None for _, _, reason in planned)
        print(f"{len(planned) - refused} to model, {refused} refused (flagged in the catalogue, the others go on)")
        return subprocess.run([*snakemake, "--dry-run", "--quiet", "rules", *extra], cwd=root).returncode
    code = subprocess.run([*snakemake, *extra], cwd=root).returncode
    if code == 0:
        print(f"catalogue: {root / TARGET}; per lens: results/lenses/<name>.{{h5,png,coolest.json}}")
    return code


def main(argv=None):
    """Options it does not know (e.g. `--forcerun model_lens`, `--keep-going`) go to Snakemake."""
    args, extra = parser().parse_known_args(argv)
    return {"model": model}[args.command](args, [arg for arg in extra if arg != "--"])


if __name__ == "__main__":
    sys.exit(main())
