"""Guarded hybrid modelling of one lens: BNN(1 sigma) priors, the classifier's guard, M21's reruns.

P21 found PyAutoLens with Gaussian priors from the BNN the best of its methods;
M21's classifier catches unphysical (under/over-magnified) reconstructions and
its rerun rules move the Einstein-radius prior away from them. Here the first
fit uses the BNN's priors and the classifier judges every fit; a UM/OM verdict
hands the lens to `hybrid.next_action` (with the measured relations), a C
verdict is refined and accepted as in M21. The lens centre's prior is
uniform within `centre_half_width` of the mask's centroid, or of a centre the
user knows (the lens galaxy's light, the stamp centre): arcs bias the
centroid, by over an arcsecond for a single bright arc; an annulus about the
centroid that leaves the lens centre outside is refitted about the centre.

Two guards on the BNN: its Gaussian theta_E prior is truncated to the mask's
annulus (the ring lies between the arcs' inner and outer radii, M21's blind
range) or to a range the user knows, and when the BNN's theta_E lies outside
that range the first fit uses M21's uniform priors instead (flagged, not silent).
A third, network-free: where the arcs hold two opposite peaks, their mean radius
about the lens centre is theta_E to ~10 %; a BNN far from it (a lens unlike its
training set) hands the first fit's theta_E prior to that estimate (flagged).
"""

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage

from hybridlens.fitting import hybrid, informed_priors, modelling, prescan
from hybridlens.flags import GuardedFlag, HybridFlag, MaskFlag
from hybridlens.reconstruction import masking, positions
from hybridlens.own_lenses.lens_light import linear_gaussians
from hybridlens.reconstruction.inversion import MaskedLens, Mass
from hybridlens.vocabulary import CLASSES

PRIOR_SOURCES = {"m21_uniform": 0, "bnn": 1, "given": 2}  # where the first fit's priors came from


@dataclass(frozen=True)
class GuardSettings:
    """The guarded loop's numbers (config `model_lenses`, `hybrid_modelling`, `p21_comparison.priors`)."""

    hybrid: hybrid.HybridSettings
    priors: informed_priors.PriorSettings
    modelling_priors: dict  # modelling.priors (centre half-width: model_lenses'): what the BNN does not set
    search: modelling.SearchSettings
    mc_passes: int
    min_snr: float  # lensed emission inside the mask below this S/N: no lens found
    source_shape: tuple
    source_extent: float  # raster half-width / the mask's outer radius
    masking: dict  # the config's masking block
    inversion: dict  # the config's inversion block, model_lenses.inversion over it
    class_ratio_ranges: dict  # calibrate_relations.class_ratio_ranges
    prescan: prescan.PrescanSettings  # modelling.prescan
    use_prescan: bool = True  # model_lenses.prescan
    agree_sigma: float = None  # model_lenses.accept_within_sigma
    positions: object = None  # model_lenses.positions: a reconstruction.positions.PositionSettings (None: off)
    joint_light: bool = False  # model_lenses.joint_light
    stamp_centre: prescan.CentreSearch = None  # model_lenses.stamp_centre
    pair_check: "PairCheck" = None  # model_lenses.pair_check (None: off)

    @classmethod
    def from_config(cls, config):
        own = config["model_lenses"]
        return cls(
            hybrid=hybrid.HybridSettings.from_config({**config["hybrid_modelling"], "reruns": own["reruns"]}),
            priors=informed_priors.PriorSettings.from_config(config["p21_comparison"]["priors"]),
            modelling_priors={**config["modelling"]["priors"], "centre_half_width": own["centre_half_width"]},
            search=modelling.SearchSettings.from_config(config["modelling"]["search"], own.get("search")),
            mc_passes=int(config["bnn"]["mc_passes"]),
            min_snr=float(own["min_snr"]),
            source_shape=tuple(config["trainingset"]["source_shape"]),
            source_extent=float(config["trainingset"]["source_extent"]),
            masking=config["masking"],
            inversion={**config["inversion"], **(own.get("inversion") or {})},
            class_ratio_ranges=config["class_ratio_ranges"],
            prescan=prescan.PrescanSettings.from_config(config["modelling"]["prescan"]),
            use_prescan=bool(own["prescan"]),
            agree_sigma=own["accept_within_sigma"],
            positions=positions.PositionSettings.from_config(own.get("positions")),
            joint_light=bool(own.get("joint_light", False)),
            stamp_centre=prescan.CentreSearch.from_config(own.get("stamp_centre")),
            pair_check=PairCheck.from_config(own.get("pair_check")),
        )


@dataclass(frozen=True)
class PairCheck:
    """`model_lenses.pair_check`: when the BNN's theta_E is not believed over the arcs' own estimate."""

    tolerance: float  # |theta_BNN / theta_pair - 1| above this: the pair's theta_E is the prior's middle
    sigma: float  # its fractional 1 sigma (the pair estimate's measured scatter), at least the BNN's own
    second_start: float = None  # above this (and within tolerance): the prescan climbs from both, evidence picks

    @classmethod
    def from_config(cls, settings):
        return None if settings is None else cls(**settings)


@dataclass
class Networks:
    """The trained networks a guarded fit asks: the SIE BNN and the reconstruction classifier."""

    predict: object  # image (H, W) -> informed_priors.Prediction
    classify: object  # inversion.Products -> (p_under, p_correct, p_over)
    relations: dict  # calibrate_relations' under / correct / over lines


def bnn_predictor(chosen_file, passes, seed):
    """`predict(image) -> Prediction` of the BNN `select_bnn` chose (MC dropout, its scaled 1 sigma)."""
    from hybridlens.networks import bnn, bnn_training

    chosen = bnn_training.load_chosen(chosen_file)

    def predict(image):
        images = bnn.scale_images(np.asarray(image, np.float32)[None, None])
        values = chosen.predict_images(images, passes, seed=seed)
        out = {}
        for name in ("einstein_radius", "axis_ratio", "angle"):
            mean, sigma = values[name]
            out[name], out[f"{name}_sigma"] = float(mean[0]), float(sigma[0])
        return informed_priors.Prediction(**out)

    return predict


def load_networks(bnn_chosen, classifier, relations, classifier_settings, passes, seed):
    """The chosen SIE BNN, the classifier and the relations, from their HDF5 files."""
    from hybridlens import io
    from hybridlens.networks import training

    return Networks(
        predict=bnn_predictor(bnn_chosen, passes, seed),
        classify=training.classifier_from_hdf5(classifier, classifier_settings),
        relations=io.read_relations(relations),
    )


def signal_to_noise(image, noise_map, mask, smooth_pixels=1.0):
    """Integrated S/N of the emission inside `mask`: its pixels whose smoothed value exceeds the noise.

    Not all of the mask's pixels: an annulus about a double's lens reaches from the
    counter-image to the outer image, and its empty pixels would dilute a clear detection.
    """
    smoothed = ndimage.gaussian_filter(np.asarray(image, float), smooth_pixels)
    emission = mask & (smoothed > noise_map)
    if not emission.any():
        return 0.0
    return float(image[emission].sum() / np.sqrt((noise_map[emission] ** 2).sum()))


def first_priors(prediction, bounds, blind, centre, settings):
    """The first fit's priors: the BNN's Gaussians, theta_E truncated to `bounds` (the annulus by default).

    A BNN whose theta_E lies outside the bounds is out of its depth on this
    lens: its q and phi are not trusted either, the fit starts from M21's `blind` priors.
    """
    low, high = bounds
    if not low <= prediction.einstein_radius <= high:
        return blind, GuardedFlag.BNN_OFF_MASK
    built = informed_priors.bnn_gaussian_priors(prediction, centre, settings.modelling_priors, settings.priors)
    theta = modelling.Prior.gaussian(prediction.einstein_radius, prediction.einstein_radius_sigma, low, high)
    return built.sie.replace(einstein_radius=theta), 0


def pair_checked(prediction, peaks, centre, check):
    """`prediction` with theta_E moved to the arcs' pair estimate where the BNN strays beyond `check.tolerance`.

    Returns (prediction, GuardedFlag bits, theta_pair). The BNN's q and phi are kept: the
    pair says nothing about them, and the prescan climbs them from there. A lens with no
    opposite pair (one arc, or the check off) keeps the BNN's prediction.
    """
    if check is None or peaks is None:
        return prediction, 0, np.nan
    theta = positions.pair_einstein_radius(peaks, centre)
    if not np.isfinite(theta) or abs(prediction.einstein_radius / theta - 1) <= check.tolerance:
        return prediction, 0, theta
    fraction = max(check.sigma, prediction.einstein_radius_sigma / prediction.einstein_radius)
    moved = replace(prediction, einstein_radius=theta, einstein_radius_sigma=fraction * theta)
    return moved, GuardedFlag.PAIR_PRIOR, theta


def pair_start(prediction, theta_pair, check):
    """The arcs' pair estimate as a second prescan start, or None.

    Where the BNN and the pair differ by more than `check.second_start` but not by the
    tolerance, neither is trusted over the other: the prescan climbs from each (the BNN's
    q and phi, the pair's theta_E with its measured scatter) and the higher evidence wins.
    A BNN off by ~10 % starts the climb on the wrong side of a "between" optimum it then
    cannot leave; the pair's start is on the right one.
    """
    if check is None or check.second_start is None or not np.isfinite(theta_pair):
        return None
    if abs(prediction.einstein_radius / theta_pair - 1) <= check.second_start:
        return None
    fraction = max(check.sigma, prediction.einstein_radius_sigma / prediction.einstein_radius)
    return replace(prediction, einstein_radius=float(theta_pair), einstein_radius_sigma=fraction * float(theta_pair))


PRESCAN_STARTS = {"bnn": 0, "pair": 1}  # where the prescan that set the first fit's priors climbed from


def first_prescan(masked, prediction, centre, bounds, settings, seed, centre_uncertain=False):
    """The prescan from the BNN's model (a `prescan.Prescan`), or None where the BNN is not trusted.

    `centre_uncertain`: the start centre may be pixels off (a stamp centre): it is scanned
    on `settings.stamp_centre`'s grid first.
    """
    if not bounds[0] <= prediction.einstein_radius <= bounds[1]:
        return None
    start = Mass(prediction.einstein_radius, prediction.axis_ratio, prediction.angle, tuple(centre))
    sigmas = (prediction.einstein_radius_sigma, prediction.axis_ratio_sigma, prediction.angle_sigma)
    q_range = settings.modelling_priors["axis_ratio_range"]
    search = settings.stamp_centre if centre_uncertain else None
    return prescan.scan(masked, start, sigmas, bounds, q_range, settings.prescan, seed, centre_search=search)


def network_agrees(einstein_radius, prediction, n_sigma):
    """Whether a fit's theta_E lies within `n_sigma` of the BNN's (None: the guard is off)."""
    if n_sigma is None:
        return False
    return abs(einstein_radius - prediction.einstein_radius) <= n_sigma * prediction.einstein_radius_sigma


def first_fit(
    problem, prediction, centre, priors, flags, settings, known, log, centre_uncertain=False, alternative=None
):
    """Round 0: the prescan (when on and the BNN trusted), then the fit; its `RoundRecord`.

    `centre_uncertain`: the centre prior's middle is a guess good to a few pixels (the stamp
    centre): the prescan scans the centre on a grid (`prescan.CentreSearch`) and the fit's
    centre window about its optimum is `stamp_centre.window`. On survey-style doubles
    without lens light, the prescan's ±0.1" window about a climb that barely moved held
    fits 0.14-0.18" off; the whole ±0.5" prior let the sampler wander to the box's corners.
    `alternative`: a second start (`pair_start`, or None), see `best_prescan`.
    """
    scanned, search = None, settings.search
    centre_uncertain = centre_uncertain and settings.stamp_centre is not None
    if settings.use_prescan and not flags:
        scanned = first_prescan(
            problem.masked, prediction, centre, problem.bounds, settings, problem.seed, centre_uncertain
        )
        log.info("prescan from the BNN: %s", prescan_text(scanned))
        scanned, prediction, start, other_evidence = best_prescan(
            problem, scanned, prediction, alternative, centre, settings, centre_uncertain, log
        )
        wide = settings.stamp_centre.window if centre_uncertain else None
        priors = settings.prescan.narrowed(scanned, priors, centre_half_width=wide)
        search = modelling.SearchSettings.from_config(asdict(search), settings.prescan.search)
    log.info("round 0 priors: %s", priors.text())
    row, products = hybrid.fit_round(problem, priors, search, 0)
    source = PRIOR_SOURCES["m21_uniform" if flags else "bnn" if known is None else "given"]
    row = {**row, "prior_source": float(source)}
    if scanned is not None:  # its priors are narrowed about an optimum, as M21's refinement's are
        row.update(scanned.row(), narrowed=1.0, seconds=row["seconds"] + scanned.seconds)
        row.update(prescan_start=float(PRESCAN_STARTS[start]), prescan_other_log_evidence=other_evidence)
        row["network_agrees"] = float(network_agrees(row["median_einstein_radius"], prediction, settings.agree_sigma))
    return hybrid.RoundRecord(row, "", products)


def prescan_text(scanned):
    """A prescan's optimum, evidence and cost on one line."""
    m = scanned.mass
    return (
        f'optimum theta_E {m.einstein_radius:.3f}", q {m.axis_ratio:.2f}, phi {m.angle:.0f} deg, '
        f'centre ({m.centre[0]:+.3f}, {m.centre[1]:+.3f})", ln Z {scanned.log_evidence:.1f} '
        f"after {scanned.evaluations} inversions in {scanned.seconds:.0f} s"
    )


def best_prescan(problem, scanned, prediction, alternative, centre, settings, centre_uncertain, log):
    """The BNN start's prescan `scanned` against one from `alternative`: the higher evidence wins.

    Returns (prescan, the winning start's prediction, "bnn" | "pair", the loser's ln Z or NaN);
    the prescan's cost counts both climbs. The fit's agreement is then judged against the
    start that won, each with its own sigma.
    """
    if scanned is None or alternative is None:
        return scanned, prediction, "bnn", np.nan
    other = first_prescan(problem.masked, alternative, centre, problem.bounds, settings, problem.seed, centre_uncertain)
    if other is None:
        return scanned, prediction, "bnn", np.nan
    log.info("prescan from the arcs' pair (theta_E %.3f\"): %s", alternative.einstein_radius, prescan_text(other))
    cost = {"seconds": other.seconds + scanned.seconds, "evaluations": other.evaluations + scanned.evaluations}
    if other.log_evidence > scanned.log_evidence:
        log.info("prescan: the pair's start climbed higher (ln Z %+.1f)", other.log_evidence - scanned.log_evidence)
        return replace(other, **cost), alternative, "pair", scanned.log_evidence
    log.info("prescan: the BNN's start climbed higher (ln Z %+.1f)", scanned.log_evidence - other.log_evidence)
    return replace(scanned, **cost), prediction, "bnn", other.log_evidence


def lens_problem(image, noise_map, psf_kernel, pixel_scale, annulus, centre, bounds, settings, seed):
    """A `hybrid.LensProblem` about `centre`: M21's blind priors (theta_E over `bounds`) for the reruns."""
    peaks = None
    if settings.positions is not None:
        peaks = positions.arc_peaks(image, noise_map, annulus.mask, pixel_scale, settings.positions)
    return hybrid.LensProblem(
        masked=MaskedLens(image, noise_map, annulus.mask, psf_kernel, pixel_scale, settings.inversion),
        peaks=peaks,
        positions=settings.positions,
        blind_priors=modelling.uniform_priors(centre, bounds, settings.modelling_priors),
        search=settings.search,
        class_ratio_ranges=settings.class_ratio_ranges,
        bounds=bounds,
        source_shape=settings.source_shape,
        source_extent=settings.source_extent * annulus.outer_radius,
        seed=seed,
    )


@dataclass
class GuardedResult:
    """A lens's rounds, the annulus, the BNN's prediction and the lens-level flags."""

    records: list
    annulus: object
    prediction: object
    flags: int  # GuardedFlag bits of the lens (its rounds' are in `records`)
    reason: str
    snr: float = np.nan


def model_lens(
    image,
    noise_map,
    psf_kernel,
    pixel_scale,
    networks,
    settings,
    store,
    log,
    seed,
    centre=None,
    einstein_radius_range=None,
    known=None,
    mask_centre=None,
    light=None,
    centre_uncertain=False,
):
    """Mask -> BNN -> fit with its Gaussian priors -> classifier -> M21's reruns; never raises for a bad lens.

    `centre` (y, x) arcsec: the lens centre prior's middle; None: the mask's centroid.
    `einstein_radius_range`: a theta_E range known beforehand (e.g. from a discovery
    catalogue) bounding every theta_E prior; None: the annulus' radii, as M21.
    `known`: a `Prediction` from elsewhere (a published model) used instead of the BNN's.
    `mask_centre`: the annulus' middle; None: the arcs' centroid (M21), or `centre` when
    that annulus leaves `centre` outside (`masking.lens_annulus`).
    `light`: the lens galaxy's fitted light (`own_lenses.lens_light.LensLight`), already
    subtracted from `image`; with `settings.joint_light` an accepted lens gets `joint_round`.
    `centre_uncertain`: `centre` is known to a few pixels only (the stamp's): see `first_fit`.
    """
    annulus = masking.lens_annulus(image, pixel_scale, settings.masking, mask_centre, centre)
    log.info("%s", mask_text(annulus))
    if annulus.flags & MaskFlag.NO_MASK:
        reason = f"no mask: {MaskFlag(annulus.flags & MaskFlag.NO_MASK).describe()}"
        return GuardedResult([], annulus, None, GuardedFlag.NO_LENS, reason)
    snr = signal_to_noise(image, noise_map, annulus.mask)
    if snr < settings.min_snr:
        reason = f"no lensed emission found: S/N {snr:.1f} inside the mask < {settings.min_snr:g}"
        return GuardedResult([], annulus, None, GuardedFlag.NO_LENS, reason, snr)
    log.info("lensed emission: S/N %.1f inside the mask (>= %g needed)", snr, settings.min_snr)
    prediction = networks.predict(image) if known is None else known
    centre = annulus.centre if centre is None else tuple(centre)
    bounds = tuple(einstein_radius_range or (annulus.inner_radius, annulus.outer_radius))
    problem = lens_problem(image, noise_map, psf_kernel, pixel_scale, annulus, centre, bounds, settings, seed)
    pair_flags, alternative = 0, None
    if known is None:
        network = prediction
        prediction, pair_flags, pair = pair_checked(prediction, problem.peaks, centre, settings.pair_check)
        if pair_flags:
            log.info(
                "BNN theta_E %.3f\" vs %.3f\" from the arcs' opposite peaks: beyond %.0f %%, the prior is the pair's",
                network.einstein_radius,
                pair,
                100 * settings.pair_check.tolerance,
            )
        alternative = pair_start(prediction, pair, settings.pair_check)
    priors, flags = first_priors(prediction, bounds, problem.blind_priors, centre, settings)
    log.info("%s", prediction_text(prediction, known is not None, bounds, flags))
    if problem.peaks is not None:
        log.info("arc peaks for the position check: %d", len(problem.peaks))
    first = None
    if not store.load():
        try:
            first = first_fit(
                problem, prediction, centre, priors, flags, settings, known, log, centre_uncertain, alternative
            )
        except Exception as error:  # this lens is flagged; the others go on
            log.exception("first fit failed")
            store.save([hybrid.failed_round(0, priors, error)])
    records = hybrid.model_lens(problem, networks.classify, networks.relations, settings.hybrid, store, log, first)
    if settings.joint_light and light is not None and wants_joint_round(records):
        lit = MaskedLens(
            image + light.image,
            noise_map,
            annulus.mask,
            psf_kernel,
            pixel_scale,
            settings.inversion,
            lens_light=linear_gaussians(light.shapes()),
            source_image=image,
        )
        records = joint_round(replace(problem, masked=lit), records, networks.classify, settings, store, log)
    reason = records[-1].reason
    return GuardedResult(records, annulus, prediction, flags | pair_flags, reason, snr)


JOINT_REASON = "joint fit of the lens light (MGE shapes, amplitudes solved with the source), mass and source"


def wants_joint_round(records):
    """An accepted lens whose last round is not already the joint one."""
    last = records[-1] if records else None
    return (
        last is not None
        and last.products is not None
        and last.action.kind == hybrid.ACCEPT
        and last.row.get("joint_light", 0.0) != 1.0
    )


def joint_round(problem, records, classify, settings, store, log):
    """The lens light, mass and source fitted together about the accepted model: the final round.

    The lens light was fitted alone (arcs clipped) and subtracted; here its Gaussians' shapes
    stay and their amplitudes are solved in the same linear inversion as the source pixels,
    on the image with the light in, while the mass is sampled within M21's refinement
    windows about the accepted model. The classifier's call is recorded, not acted on. A
    failed joint fit leaves the accepted round final.
    """
    accepted, number = records[-1], len(records)
    refine = hybrid.Action(hybrid.REFINE, JOINT_REASON)
    priors = hybrid.priors_for(refine, problem.blind_priors, accepted.medians, settings.hybrid)
    search = modelling.SearchSettings.from_config(asdict(settings.search), settings.prescan.search)
    try:
        # the regularisation held at its evidence maximum for the accepted mass, as the prescanned first fit's
        coefficient, _ = problem.masked.best_coefficient(Mass.from_parameters(accepted.medians))
        priors = priors.replace(coefficient=modelling.Prior.fixed(coefficient))
        log.info("round %d priors (with the lens light): %s", number, priors.text())
        row, products = hybrid.fit_round(problem, priors, search, number)
    except Exception:
        log.exception("round %d: joint fit failed; the accepted round stays final", number)
        return records
    probabilities = np.asarray(classify(products), float)
    row.update({f"p_{name}": float(p) for name, p in zip(CLASSES, probabilities)})
    row.update(
        verdict=float(np.argmax(probabilities)),
        action=float(hybrid.ACTION_CODES[hybrid.ACCEPT]),
        next_low=np.nan,
        next_high=np.nan,
        joint_light=1.0,
        flags=float(HybridFlag.CALL_CAP * (row["hit_call_cap"] > 0)),
    )
    record = hybrid.RoundRecord(row, JOINT_REASON, products)
    records = [*records, record]
    store.save(records)
    log.info("%s", hybrid.round_text(record))
    return records


def mask_text(annulus):
    """The mask on one line: pixels, annulus radii and centre, flags."""
    if not annulus.mask.any():
        return f"mask: none; {MaskFlag(annulus.flags).describe()}"
    text = (
        f'mask: {int(annulus.mask.sum())} pixels, annulus {annulus.inner_radius:.2f}-{annulus.outer_radius:.2f}" '
        f'about ({annulus.centre[0]:+.3f}, {annulus.centre[1]:+.3f})"'
    )
    return text + (f"; {MaskFlag(annulus.flags).describe()}" if annulus.flags else "")


def prediction_text(prediction, given, bounds, flags):
    """The first fit's prior source on one line: the BNN's (or the user's) model and whether it is used."""
    p = prediction
    source = "given model" if given else "BNN"
    text = (
        f'{source}: theta_E {p.einstein_radius:.3f} +- {p.einstein_radius_sigma:.3f}", '
        f"q {p.axis_ratio:.2f} +- {p.axis_ratio_sigma:.2f}, phi {p.angle:.0f} +- {p.angle_sigma:.0f} deg"
    )
    if flags & GuardedFlag.BNN_OFF_MASK:
        return f"{text}; NOT trusted: theta_E outside {bounds[0]:.2f}-{bounds[1]:.2f}\", M21's uniform priors instead"
    return f'{text}; trusted (theta_E inside {bounds[0]:.2f}-{bounds[1]:.2f}"): its Gaussians are the priors'


def final_round(records):
    """The last fitted round (the model the loop ended on), or None."""
    fitted = [record for record in records if record.products is not None]
    return fitted[-1] if fitted else None


def lens_flags(result):
    """The lens's flags: its own and every round's."""
    flags = result.flags
    for record in result.records:
        flags |= int(record.row.get("flags", 0))
    return flags


CATALOGUE_PARAMETERS = ("einstein_radius", "axis_ratio", "angle", "centre_y", "centre_x")


def catalogue_row(name, result, seconds, position_angle=None):
    """One catalogue row: final theta_E, q, phi, centre with 68 % errors, verdict, rounds, flags, cost."""
    row = {"name": name, "flags": lens_flags(result), "reason": result.reason, "rounds": 0, "fits": 0}
    row.update({f"{n}{s}": np.nan for n in CATALOGUE_PARAMETERS for s in ("", "_lower", "_upper", "_sigma")})
    row.update(verdict="", final_action="flag", seconds=float(seconds), fit_seconds=0.0, likelihood_calls=0.0)
    row.update({f"p_{c}": np.nan for c in CLASSES}, snr=float(result.snr))
    row["position_angle"] = np.nan
    # the annulus' MaskFlag bits (RECENTRED: the arcs' annulus missed the lens centre)
    row["mask_flags"] = int(result.annulus.flags) if result.annulus is not None else 0
    if result.prediction is not None:  # the BNN's, the model the user gave, or theta_E moved to the arcs' pair
        row["first_prior_einstein_radius"] = result.prediction.einstein_radius
        row["first_prior_einstein_radius_sigma"] = result.prediction.einstein_radius_sigma
    final = final_round(result.records)
    if result.records:
        row["rounds"] = len(result.records)
        row["final_action"] = result.records[-1].action.kind
    fitted = [record.row for record in result.records if record.products is not None]
    row["fits"] = len(fitted)
    row["fit_seconds"] = float(sum(r["seconds"] for r in fitted))
    row["likelihood_calls"] = float(sum(r["n_calls"] for r in fitted))
    if result.records and "prior_source" in result.records[0].row:
        row["first_prior"] = {code: name for name, code in PRIOR_SOURCES.items()}[
            int(result.records[0].row["prior_source"])
        ]
    if final is not None:
        for n in CATALOGUE_PARAMETERS:
            row[n] = final.row[f"median_{n}"]
            row[f"{n}_lower"], row[f"{n}_upper"] = final.row[f"lower_{n}"], final.row[f"upper_{n}"]
            row[f"{n}_sigma"] = final.row[f"sigma_{n}"]
        row["verdict"] = hybrid.ABBREVIATIONS[CLASSES[int(final.row["verdict"])]]
        # how far apart the arcs' brightest peak and its counterpart trace back (/ theta_E; NaN: not checked)
        row["position_spread"] = final.row.get("position_spread", np.nan)
        row["joint_light"] = final.row.get("joint_light", 0.0)  # the final fit had the lens light in
        row.update({f"p_{c}": final.row[f"p_{c}"] for c in CLASSES})
        if position_angle is not None:
            row["position_angle"] = position_angle(row["angle"])
    return row


def end_text(row):
    """How a lens ended, from its catalogue row: the final model, verdict, cost and flags."""
    text = f"{row['final_action']} after {row['fits']} fits in {row['seconds']:.0f} s ({row['reason']})"
    if np.isfinite(row["einstein_radius"]):
        text += (
            f"; theta_E {row['einstein_radius']:.3f} +- {row['einstein_radius_sigma']:.3f}\", "
            f"q {row['axis_ratio']:.2f}, phi {row['angle']:.0f} deg, CNN {row['verdict']}"
        )
    flags = int(row["flags"])
    return text + (f"; flags {flags}: {describe_flags(flags)}" if flags else "; no flags")


# --- evaluation against the truth (M21's blind lenses) ------------------------------------------------

APPROACHES = ("m21_loop", "bnn_gaussian", "guarded")  # M21 blind + reruns; PyAL + BNN(1 sigma) alone; guarded


def evaluate(tables, reruns_by_approach, class_ratio_ranges):
    """Per approach: unphysical final solutions by the truth, theta_E / q / phi errors, fits and seconds per lens.

    `tables` {approach: rounds table (hybrid.write_rounds columns + lens_index + truths)}. For
    `bnn_gaussian` pass the guarded tables: its model is their round 0.
    """
    from hybridlens.analysis.evaluation import angle_error, correct_by_truth, describe

    out = {}
    for approach, table in tables.items():
        last = reruns_by_approach[approach]
        if "verdict" not in table:  # no lens was fitted
            table = table.assign(verdict=np.nan, median_einstein_radius=np.nan, seconds=np.nan, n_calls=np.nan)
        fitted = table[np.isfinite(table["verdict"]) & (table["round"] <= last)]
        state = hybrid.state_after(table, last)
        n_lenses = int(table["lens_index"].nunique())
        classes = [
            hybrid.truth_class(theta, truth, class_ratio_ranges)
            for theta, truth in zip(state["median_einstein_radius"], state["truth_einstein_radius"])
        ]
        unphysical = sum(c != "correct" for c in classes)
        right = (
            correct_by_truth(
                state["median_einstein_radius"],
                state["median_axis_ratio"],
                state["median_centre_y"],
                state["median_centre_x"],
                state["truth_einstein_radius"],
                state["truth_axis_ratio"],
                state["truth_lens_centre_y"],
                state["truth_lens_centre_x"],
            )
            if "truth_lens_centre_y" in state and "median_centre_y" in state
            else np.zeros(len(state), bool)
        )
        per_lens = fitted.groupby("lens_index")
        out[approach] = {
            "n_lenses": n_lenses,
            "n_modelled": int(len(state)),
            "unphysical": int(unphysical),
            "unphysical_fraction": float(unphysical / len(state)) if len(state) else float("nan"),
            "truth_classes": {c: classes.count(c) for c in hybrid.TRUTH_CLASSES},
            # theta_E within 5 %, centre within 0.1", q within 0.1 (evaluation.CORRECT_BY_TRUTH)
            "correct_theta_centre_q": int(right.sum()),
            "fractional_error_einstein_radius": describe(
                np.abs(state["median_einstein_radius"] / state["truth_einstein_radius"] - 1)
            ),
            "fractional_error_axis_ratio": describe(np.abs(state["median_axis_ratio"] / state["truth_axis_ratio"] - 1)),
            "absolute_error_angle": describe(np.abs(angle_error(state["median_angle"], state["truth_angle"]))),
            "fits_per_lens": describe(per_lens.size()),
            "seconds_per_lens": describe(per_lens["seconds"].sum()),
            # a lens's first fit (its blind fit in M21's loop, the prescanned one in the guarded loop)
            "first_fit_seconds": describe(fitted.loc[fitted["round"] == 0, "seconds"]),
            "calls_per_lens": describe(per_lens["n_calls"].sum()),
            "call_cap_hits": int((fitted["hit_call_cap"] > 0).sum()),
            "call_cap_hit_fits": hybrid.call_cap_hit_fits(fitted),
            "flagged_for_inspection": (
                int(
                    (
                        table.sort_values("round").groupby("lens_index").tail(1)["action"]
                        == hybrid.ACTION_CODES["flag"]
                    ).sum()
                )
                if approach != "bnn_gaussian"
                else 0
            ),
        }
        if approach != "bnn_gaussian" and "position_split" in fitted:  # fits that ran the position check
            out[approach].update(judged_on_fits(fitted))
    base = out.get("m21_loop", {}).get("unphysical")
    for approach in out:
        mine = out[approach]["unphysical"]
        out[approach]["unphysical_change_vs_m21_loop"] = (mine - base) / base if base else float("nan")
    out["classifier_on_real_fits"] = classifier_on_real_fits(tables, reruns_by_approach)
    return out


def classifier_on_real_fits(tables, reruns_by_approach):
    """The classifier's verdicts on every fit of both loops that has a truth class, per loop and pooled.

    M21's loop's fits are mostly under-magnified and the guarded loop's mostly correct, so only
    together do they test the network on real fits of each class; none was in its training set.
    """
    import pandas as pd

    out, labelled = {}, []
    for approach in ("m21_loop", "guarded"):
        table = tables.get(approach)
        if table is None or "verdict" not in table or "truth_class" not in table:
            continue
        rows = table[
            np.isfinite(table["verdict"])
            & (table["round"] <= reruns_by_approach[approach])
            & (table["truth_class"] < 3)  # "between" has no label
        ]
        out[approach] = hybrid.verdicts_on_fits(rows, rows["verdict"])
        labelled.append(rows)
    if labelled:
        pooled = pd.concat(labelled)
        out["both_loops"] = hybrid.verdicts_on_fits(pooled, pooled["verdict"])
    return out


def judged_on_fits(fitted):
    """The classifier and the loop's judge (`hybrid.judge_verdicts`) on every fit, by its `truth_class` column."""
    labelled = fitted[fitted["truth_class"] < 3]
    return {
        "classifier_on_fits": hybrid.verdicts_on_fits(labelled, labelled["verdict"]),
        "judge_on_fits": hybrid.verdicts_on_fits(labelled, hybrid.judge_verdicts(labelled)),
    }


# --- HDF5 --------------------------------------------------------------------------------------------


def write_lens(path, result, row, data, attrs, extra_columns=None):
    """`results/lenses/<name>.h5`: every round (priors, fit, CNN, products), the data, the catalogue row.

    `data`: {image, noise_map, psf_kernel} in PyAutoLens' conventions (empty for unreadable input).
    """
    import json

    annulus = result.annulus if result is not None else None
    lens_group = {name: np.asarray(array) for name, array in data.items()}
    if annulus is not None:
        lens_group["mask"] = annulus.mask
        lens_group["annulus"] = np.array(
            [annulus.inner_radius, annulus.outer_radius, annulus.centre[0], annulus.centre[1]], float
        )
    records = result.records if result is not None else []
    attrs = {**attrs, "catalogue_row": json.dumps(row, default=float), "lens_flags": int(row["flags"])}
    hybrid.write_rounds(path, records, attrs, extra_columns, groups={"lens": lens_group}, flag_family=GuardedFlag)


def read_catalogue_row(path):
    """The catalogue row `write_lens` stored."""
    import json

    import h5py

    with h5py.File(path, "r") as h5:
        return json.loads(h5.attrs["catalogue_row"])


def describe_flags(flags):
    """The meanings of a lens's flags (`GuardedFlag` bits), joined."""
    return GuardedFlag(int(flags)).describe()


APPROACH_LABELS = {"m21_loop": "M21 blind + reruns", "bnn_gaussian": "PyAL + BNN(1 sigma)", "guarded": "guarded hybrid"}


def markdown_table(table, m21_reduction):
    """The evaluation table in Markdown, M21's own reduction quoted beneath as the reference."""
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join(
        "| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |\n"
        for row in table.itertuples(index=False)
    )
    note = (
        f"\nM21 (reference, not ours): their loop cut unphysical solutions by {100 * m21_reduction:.0f} % "
        "between the blind fits and the third rerun.\n"
    )
    return header + body + note
