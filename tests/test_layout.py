"""The tree a maintainer reads: one test module per package module, no path hacks, adapters only in scripts."""

import ast
import re

import hybridlens


def package_modules(root):
    src = root / "src" / "hybridlens"
    return sorted(p for p in src.rglob("*.py") if p.name != "__init__.py")


def test_test_modules_mirror_the_package(root):
    """`src/hybridlens/<sub>/<name>.py` is tested by `tests/test_<name>.py` (or `test_<sub>_<name>.py` where
    several stages share a module name, as their `figures.py` do), and that test module imports it."""
    missing = []
    for path in package_modules(root):
        rel = path.relative_to(root / "src").with_suffix("")
        dotted = ".".join(rel.parts)
        package, name = ".".join(rel.parts[:-1]), rel.parts[-1]
        candidates = [root / "tests" / f"test_{name}.py"]
        if len(rel.parts) > 2:
            candidates.insert(0, root / "tests" / f"test_{rel.parts[-2]}_{name}.py")
        imported = re.compile(rf"{re.escape(dotted)}\b|from {re.escape(package)} import [^\n]*\b{name}\b")
        tested = [c for c in candidates if c.exists() and imported.search(c.read_text())]
        if not tested:
            missing.append(dotted)
    assert missing == []


def test_rule_scripts_are_thin_adapters(root):
    """Physics lives in the package: `workflow/scripts` holds adapters only, no importable package of its own."""
    scripts = root / "workflow" / "scripts"
    assert not any(p.is_dir() and p.name != "__pycache__" for p in scripts.iterdir())
    for path in scripts.glob("*.py"):
        tree = ast.parse(path.read_text())
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert len(defs) <= 2, f"{path.name} defines {defs}: move them into the package"


def test_no_import_path_manipulation(root):
    files = [root / "Snakefile", *root.glob("workflow/**/*.smk"), *root.glob("workflow/**/*.py")]
    files += [*root.glob("src/**/*.py"), *root.glob("tests/**/*.py"), *root.glob("benchmarks/**/*.py")]
    offenders = [
        str(f.relative_to(root)) for f in files if re.search(r"sys\.path\.(insert|append|extend)", f.read_text())
    ]
    assert offenders == []
    assert hybridlens.__file__.startswith(str(root / "src"))
