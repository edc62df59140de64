"""The synthetic world's privileged teacher backend: critiques, refinement, hindsight, consistency, generic judge."""

import random

import numpy as np
import pytest
from PIL import Image

from rationalrewards.backends import GenerationConfig, load_backend
from rationalrewards.model import RationalRewardModel
from rationalrewards.parrot.consistency import consistency_conversation, parse_answer, rationale_view
from rationalrewards.parrot.hindsight import hindsight_conversation
from rationalrewards.parsing import parse_critique, parse_pairwise
from rationalrewards.rubric import aggregate
from rationalrewards.schema import PreferencePair, Sample
from rationalrewards.synthetic import (
    EVAL_KEY,
    Finding,
    World,
    check_finding,
    default_world,
    false_findings,
    judge,
    make_pairs,
    parse_request,
    save_pairs,
)
from rationalrewards.synthetic.critic import match_claim, split_claims
from rationalrewards.synthetic.teacher import SyntheticTeacher, TeacherConfig, check_claims, hallucinations
from rationalrewards.templates import get_template

FLIP = {"A": "B", "B": "A", "tie": "A"}


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def pairs(world):
    return make_pairs(300, seed=21, task="both", world=world)


def _ranks(x):
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(len(x))
    _, inv, cnt = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(inv, weights=r) / cnt)[inv]


def spearman(x, y) -> float:
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def _hindsight_run(teacher, pairs):
    """(record, text, predicted answer) per pair: hindsight rationale, then the label-free consistency check."""
    out = []
    for p in pairs:
        comp = teacher.generate([hindsight_conversation(p)])[0]
        assert comp.ok, comp.error
        rec = teacher.log[-1]
        text = comp.texts[0]
        view = rationale_view(parse_pairwise(text, p.task.value))
        ans = teacher.generate([consistency_conversation(p, view)])[0]
        assert ans.ok, ans.error
        out.append((rec, text, parse_answer(ans.texts[0])))
    return out


# ---------------------------------------------------------------------------
# critiques


@pytest.mark.parametrize("layout", ["request-first", "prefix-shared"])
def test_critiques_parse_and_state_only_true_findings(world, pairs, layout):
    teacher = SyntheticTeacher(world=world)
    tpl = get_template(layout)
    chosen = pairs[:40]
    samples = [p.sample_a() for p in chosen]
    comps = teacher.generate([tpl.pointwise(s) for s in samples])
    n_claims = 0
    for s, comp in zip(samples, comps, strict=True):
        assert comp.ok, comp.error
        c = parse_critique(comp.texts[0], s.task)
        assert c.parse_ok, c.parse_errors
        asks_text = parse_request(s.request, s.task.value).asks_text
        assert ("text_rendering" in c.na) == (not asks_text)
        assert c.summary and c.refined_request
        claims = check_claims(comp.texts[0], s, world=world)
        n_claims += len(claims)
        assert all(cl.supported for cl in claims), [cl.text for cl in claims if not cl.supported]
    assert n_claims >= 10  # the critiques do name concrete findings
    comps = teacher.generate([tpl.pairwise(p) for p in chosen])
    for p, comp in zip(chosen, comps, strict=True):
        assert comp.ok, comp.error
        c = parse_pairwise(comp.texts[0], p.task)
        assert c.parse_ok, c.parse_errors
        assert not any("derived" in e for e in c.parse_errors)  # the preference is stated, not derived
        assert hallucinations(comp.texts[0], p, world=world) == []


def test_stated_findings_are_the_true_ones_it_noticed(world, pairs):
    teacher = SyntheticTeacher(world=world, notice=0.85)
    tpl = get_template()
    samples = [p.sample_b() for p in pairs[:150]]
    teacher.generate([tpl.pointwise(s) for s in samples])
    stated = missed = 0
    for s, rec in zip(samples, teacher.log, strict=True):
        truth = judge(world.lookup(s.image), s.request)
        said = {f["description"] for f in rec["stated"]["output"]}
        assert said <= {f.description for f in truth.findings}
        assert len(said) + len(rec["missed"]["output"]) == len(truth.findings)
        stated += len(said)
        missed += len(rec["missed"]["output"])
    # perception noise: each true finding noticed with p = 0.85
    assert 0.72 < stated / (stated + missed) < 0.97


def test_scores_track_true_quality(world, pairs):
    """Spearman of the teacher's pointwise reward with the true reward: measured 0.91 (generic judge 0.67)."""
    samples = [p.sample_a() for p in pairs] + [p.sample_b() for p in pairs[:100]]
    true = [judge(world.lookup(s.image), s.request).reward for s in samples]
    rho = {}
    for judge_kind in ("teacher", "generic"):
        model = RationalRewardModel(SyntheticTeacher(world=world, judge=judge_kind))
        rewards = model.reward(samples)
        assert all(r is not None for r in rewards)
        rho[judge_kind] = spearman(rewards, true)
    assert rho["teacher"] > 0.8, rho
    assert rho["generic"] < rho["teacher"] - 0.1, rho


def test_refined_requests_keep_constraints_and_lower_failures(world):
    teacher = SyntheticTeacher(world=world)
    model = RationalRewardModel(teacher)
    samples, sources = [], []
    for i in range(160):
        task = "t2i" if i % 2 == 0 else "edit"
        src = None
        if task == "edit":
            src = world.sample_source(f"refine-{i}")
            _, text = world.sample_request(f"refine-{i}", "edit", source=src.record.scene)
        else:
            _, text = world.sample_request(f"refine-{i}", "t2i")
        gen = world.generate(text, 500 + i, 0.5, source=src.record if src else None, task=task)
        samples.append(Sample(request=text, image=gen.image, source=src.image if src else None))
        sources.append(src)
    critiques = model.critique(samples)
    fails_orig = fails_ref = trials = refined_n = 0
    for s, src, c, rec in zip(samples, sources, critiques, teacher.log, strict=True):
        task = s.task.value
        failed = {f["constraint"] for f in rec["stated"]["output"] if f["constraint"]}
        original = parse_request(s.request, task)
        refined = parse_request(c.refined_request, task)
        before, after = {k.key: k for k in original.constraints()}, {k.key: k for k in refined.constraints()}
        for key, con in before.items():  # every original constraint is kept, never stated less explicitly
            assert key in after and after[key].target == con.target, (s.request, c.refined_request)
            assert after[key].explicitness >= con.explicitness
        raised = {k for k in after if after[k].explicitness > (before[k].explicitness if k in before else 0)}
        content_failed = {k for k in failed if not k.startswith(("clean:", "preserve:"))}
        # a colour can only be restated where its shape names one group (the world's phrasing rule)
        shapes = [g.shape for g in original.groups]
        raisable = {k for k in content_failed & set(before) if before[k].explicitness < 3}
        raisable -= {k for k in raisable if k.startswith("color:") and shapes.count(k.split(" ")[-1]) > 1}
        assert raisable <= raised, (s.request, c.refined_request, raisable)
        if c.refined_request == s.request:
            continue
        refined_n += 1
        for seed in range(12):  # fresh seeds: the failure rate of exactly the constraints that failed
            for text, counter in ((s.request, "orig"), (c.refined_request, "ref")):
                gen = world.generate(text, 90_000 + seed, 0.5, source=src.record if src else None, task=task,
                                     register=False, render=False)  # fmt: skip
                k = len(failed & {f.constraint for f in judge(gen.record, original).findings})
                if counter == "orig":
                    fails_orig += k
                else:
                    fails_ref += k
            trials += len(failed)
    assert refined_n >= 40
    rate_orig, rate_ref = fails_orig / trials, fails_ref / trials
    assert rate_ref < 0.5 * rate_orig, (rate_orig, rate_ref)  # measured 0.15 -> 0.034


# ---------------------------------------------------------------------------
# hindsight and consistency


def test_hindsight_hallucinates_at_the_configured_rate(world, pairs, within_binomial):
    teacher = SyntheticTeacher(world=world, hallucinate=0.4, inflate=0.0, vague=0.3, seed=5)
    noisy = [p.model_copy(update={"label": FLIP[p.label]}) for p in pairs[:200]]
    runs = _hindsight_run(teacher, noisy)
    disagreed = [(rec, text, p) for (rec, text, _), p in zip(runs, noisy, strict=True) if rec["behaviour"] != "agree"]
    assert len(disagreed) >= 100
    k = sum(rec["behaviour"] == "hallucinate" for rec, _, _ in disagreed)
    assert within_binomial(k, [0.4] * len(disagreed)), (k, len(disagreed))
    assert within_binomial(sum(rec["behaviour"] == "vague" for rec, _, _ in disagreed), [0.3] * len(disagreed))
    for rec, text, pair in disagreed:
        found = hallucinations(text, pair, world=world)
        if rec["behaviour"] == "hallucinate":
            assert rec["false"], rec
            for f in rec["false"]:  # the side channel's false findings are false by the world's own check
                record = world.lookup(pair.image_a if f["image"] == "A" else pair.image_b)
                req = parse_request(pair.request, pair.task.value)
                assert not check_finding(Finding.from_dict(f["finding"]), record, req)
            assert {c.text.lower() for c in found} >= {f["description"].lower() for f in rec["false"]}
        else:
            assert not rec["false"] and found == []
        if rec["behaviour"] == "honest":
            c = parse_pairwise(text, pair.task.value)
            assert c.preference != pair.label  # honest: its verdict contradicts the (noisy) label


def test_hindsight_looks_harder_at_the_labels_loser(world, pairs):
    teacher = SyntheticTeacher(world=world, notice=0.7, look_harder=0.8)
    agreeing = [p for p in pairs[:150] if p.label in ("A", "B")]
    tpl = get_template()
    teacher.generate([tpl.pairwise(p) for p in agreeing])
    plain = teacher.log[:]
    teacher.clear_log()
    for p in agreeing:
        teacher.generate([hindsight_conversation(p)])
    missed_plain = sum(len(r["missed"][FLIP[p.label]]) for r, p in zip(plain, agreeing, strict=True))
    missed_hind = sum(len(r["missed"][FLIP[p.label]]) for r, p in zip(teacher.log, agreeing, strict=True))
    seen_plain = sum(len(r["stated"][FLIP[p.label]]) for r, p in zip(plain, agreeing, strict=True))
    assert missed_plain >= 10
    assert missed_hind < 0.5 * missed_plain
    assert seen_plain > 0


def test_consistency_rejects_hallucinated_and_keeps_honest(world, pairs):
    teacher = SyntheticTeacher(world=world, seed=2)
    noisy = [p.model_copy(update={"label": FLIP[p.label]}) for p in pairs[:150]]
    runs = _hindsight_run(teacher, noisy) + _hindsight_run(teacher, pairs[150:300])
    labels = [p.label for p in noisy] + [p.label for p in pairs[150:300]]
    hallucinated = [
        pred == lab for (rec, _, pred), lab in zip(runs, labels, strict=True) if rec["behaviour"] == "hallucinate"
    ]
    honest = [pred == lab for (rec, _, pred), lab in zip(runs, labels, strict=True) if rec["behaviour"] == "agree"]
    vague = [pred == lab for (rec, _, pred), lab in zip(runs, labels, strict=True) if rec["behaviour"] == "vague"]
    assert len(hallucinated) >= 40 and len(honest) >= 100
    # measured: 87% of hallucinated rationales rejected, 98% of honest ones kept
    assert 1 - np.mean(hallucinated) >= 0.75, np.mean(hallucinated)
    assert np.mean(honest) >= 0.9, np.mean(honest)
    assert 1 - np.mean(vague) >= 0.7
    # the generic judge takes claims at face value: it keeps far more hallucinated rationales
    generic = SyntheticTeacher(world=world, judge="generic")
    kept = []
    for (rec, text, _), p, lab in zip(runs, noisy + pairs[150:300], labels, strict=True):
        if rec["behaviour"] != "hallucinate":
            continue
        view = rationale_view(parse_pairwise(text, p.task.value))
        kept.append(parse_answer(generic.generate([consistency_conversation(p, view)])[0].texts[0]) == lab)
    assert np.mean(kept) > np.mean(hallucinated) + 0.2


def test_consistency_answer_is_strict(world, pairs):
    teacher = SyntheticTeacher(world=world)
    p = pairs[0]
    comp = teacher.generate([consistency_conversation(p, "No concrete analysis.")])[0]
    assert comp.ok
    lines = comp.texts[0].strip().splitlines()
    assert parse_answer(lines[-1]) in ("A", "B", "tie")
    assert teacher.log[-1]["basis"] == "own"


# ---------------------------------------------------------------------------
# baselines


def test_generic_judge_is_worse_at_preferences(world, pairs):
    acc = {}
    for judge_kind in ("teacher", "generic"):
        model = RationalRewardModel(SyntheticTeacher(world=world, judge=judge_kind))
        critiques = model.compare(pairs)
        acc[judge_kind] = np.mean(
            [c.preference == p.label for c, p in zip(critiques, pairs, strict=True) if p.label != "tie"]
        )
    assert acc["teacher"] > 0.68, acc  # measured 0.76 (the hidden utility itself: 0.89)
    assert acc["generic"] < acc["teacher"] - 0.07, acc  # measured 0.62


def test_claims_name_the_truth(world, pairs):
    """Every true description is a claim that matches itself; invented ones almost never match a true finding."""
    n_false = n_collide = 0
    for p in pairs[:120]:
        for img in (p.image_a, p.image_b):
            rec = world.lookup(img)
            req = parse_request(p.request, p.task.value)
            truth = judge(rec, req)
            for f in truth.findings:
                claims = split_claims(f"Image A: {f.description}.")
                assert len(claims) == 1 and match_claim(claims[0], truth.findings) is not None, f.description
            for f in false_findings(rec, 3, rng=random.Random(1), request=req):
                n_false += 1
                claims = split_claims(f"Image B: {f.description}")
                n_collide += match_claim(claims[0], truth.findings) is not None
    assert n_false > 300 and n_collide <= 0.01 * n_false


# ---------------------------------------------------------------------------
# the backend contract


def test_unknown_image_is_an_item_error(world, pairs):
    teacher = SyntheticTeacher(world=World())  # a fresh world that made none of these images
    teacher.add_registry(world)
    stranger = Sample(request=pairs[0].request, image=Image.new("RGB", (64, 64), (1, 2, 3)))
    tpl = get_template()
    comps = teacher.generate([tpl.pointwise(pairs[0].sample_a()), tpl.pointwise(stranger)])
    assert comps[0].ok and not comps[1].ok
    assert "not in the world's registry" in comps[1].error
    crit = RationalRewardModel(teacher).critique([stranger])[0]
    assert crit.parse_status == "failed" and crit.reward is None


def test_registry_next_to_a_dataset(world, pairs, tmp_path):
    path = save_pairs(pairs[:4], tmp_path / "pairs.parquet", registry=world.registry)
    fresh = World()
    alone = load_backend("synthetic-teacher", world=fresh)
    conv = get_template().pairwise(pairs[1])
    assert not alone.generate([conv])[0].ok
    teacher = load_backend(f"synthetic-teacher:pairwise?seed=4&notice=0.9&registry={path}", world=fresh)
    assert teacher.config.seed == 4 and teacher.config.notice == 0.9 and teacher.config.mode == "pairwise"
    assert teacher.generate([conv])[0].ok
    # a forced mode refuses other prompt kinds, item by item
    assert not teacher.generate([get_template().pointwise(pairs[1].sample_a())])[0].ok
    with pytest.raises(ValueError, match="unknown synthetic-teacher option"):
        load_backend("synthetic-teacher:pairwise?bogus=1")
    with pytest.raises(ValueError, match="mode"):
        load_backend("synthetic-teacher:sideways")
    assert load_backend("synthetic-teacher:generic").config.judge == "generic"


def test_end_to_end_with_the_default_world():
    world = default_world()
    _, text = world.sample_request("teacher-e2e", "t2i")
    gen = world.generate(text, seed=3)
    src = world.sample_source("teacher-e2e-src")
    _, etext = world.sample_request("teacher-e2e-src", "edit", source=src.record.scene)
    egen = world.generate(etext, seed=4, source=src.image)
    model = RationalRewardModel("synthetic-teacher")
    crits = model.critique(
        [Sample(request=text, image=gen.image), Sample(request=etext, image=egen.image, source=src.image)]
    )
    assert all(c.parse_ok for c in crits)
    truth = judge(gen.record)
    assert abs(crits[0].reward - truth.reward) < 0.35
    pair = PreferencePair(request=text, image_a=gen.image, image_b=world.generate(text, seed=5).image)
    assert model.compare([pair])[0].parse_ok


def test_an_edit_that_changed_nothing_is_judged(world):
    src = world.sample_source("noop")
    _, text = world.sample_request("noop", "edit", source=src.record.scene)
    teacher = SyntheticTeacher(world=world, notice=1.0)
    sample = Sample(request=text, image=src.image, source=src.image)  # the output is the source itself
    comp = teacher.generate([get_template().pointwise(sample)])[0]
    assert comp.ok, comp.error
    kinds = {f["kind"] for f in teacher.log[-1]["stated"]["output"]}
    req = parse_request(text, "edit")
    if req.edit.op != "none":
        assert "edit_not_applied" in kinds


def test_deterministic_per_item_and_samples_vary_only_when_sampling(world, pairs):
    tpl = get_template()
    convs = [tpl.pairwise(p) for p in pairs[:12]]
    a = SyntheticTeacher(world=world, seed=9).generate(convs)
    b = [SyntheticTeacher(world=world, seed=9).generate([c])[0] for c in reversed(convs)][::-1]
    assert [x.texts for x in a] == [x.texts for x in b]
    greedy = SyntheticTeacher(world=world, seed=9).generate(convs, GenerationConfig(n=3, temperature=0.0))
    assert all(len(set(x.texts)) == 1 for x in greedy)
    sampled = SyntheticTeacher(world=world, seed=9).generate(convs, GenerationConfig(n=3, temperature=0.8))
    assert sum(len(set(x.texts)) > 1 for x in sampled) >= 3
    other = SyntheticTeacher(world=world, seed=10).generate(convs)
    assert [x.texts for x in other] != [x.texts for x in a]


def test_config_validation():
    with pytest.raises(ValueError):
        TeacherConfig(hallucinate=0.7, inflate=0.2, vague=0.2)
    with pytest.raises(ValueError):
        TeacherConfig(notice=1.5)
    assert TeacherConfig(mode="generic").judge == "generic"


def test_eval_truth_is_not_needed(world, pairs):
    """The teacher reads only the conversation: stripping the pairs' evaluation truth changes nothing."""
    from rationalrewards.synthetic import strip_eval

    tpl = get_template()
    a = SyntheticTeacher(world=world).generate([tpl.pairwise(p) for p in pairs[:5]])
    b = SyntheticTeacher(world=world).generate([tpl.pairwise(strip_eval(p)) for p in pairs[:5]])
    assert [x.texts for x in a] == [x.texts for x in b]
    assert all(EVAL_KEY in p.meta for p in pairs[:5])
    assert aggregate(pairs[0].meta[EVAL_KEY]["scores_a"]) is not None
