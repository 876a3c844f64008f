import json
import math

import pytest

from rewards import AGGREGATIONS, PRMScorer, ProcessRewardModel, RewardModelConfig, aggregate, train_prm
from rewards.prm import encode_steps


def test_aggregations():
    s = [0.9, 0.5, 0.8]
    assert aggregate(s, "min") == 0.5
    assert aggregate(s, "last") == 0.8
    assert math.isclose(aggregate(s, "prod"), 0.36)
    assert math.isclose(aggregate(s, "mean"), 2.2 / 3)
    assert all(aggregate([], how) == 0.0 for how in AGGREGATIONS)
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(s, "max")


def test_nan_scores_count_as_worst(caplog):
    assert aggregate([0.9, float("nan"), 0.8], "min") == 0.0
    assert aggregate([0.9, float("nan")], "mean") == 0.45
    assert "NaN" in caplog.text


def test_step_end_positions_land_on_delimiters(tiny_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    ids, start, pos = encode_steps(tok, "1+2+3\n", ["1+2=3", "3+3=6", "Answer: 6"], "\n")
    assert len(pos) == 3
    assert tok.decode(ids[:start], skip_special_tokens=True) == "1+2+3\n" and tok.decode([ids[start]]) == "1"
    assert all(tok.decode([ids[k]]) == "\n" for k in pos)
    assert tok.decode(ids[: pos[0] + 1], skip_special_tokens=True) == "1+2+3\n1+2=3\n"


def toy_dataset(n=160):
    """Steps 'ok' are good and 'no' are bad; the label of a step is whether no 'no' came so far."""
    import random

    from datasets import Dataset

    rng = random.Random(0)
    rows = {"problem_id": [], "prompt": [], "steps": [], "soft_labels": [], "hard_labels": []}
    for i in range(n):
        steps = [rng.choice(["1+1=2", "1+1=3"]) for _ in range(rng.randint(1, 4))]
        labels, ok = [], 1.0
        for s in steps:
            ok = ok if s.endswith("2") else 0.0
            labels.append(ok)
        rows["problem_id"].append(f"p{i}")
        rows["prompt"].append("1+1\n")
        rows["steps"].append(steps)
        rows["soft_labels"].append(labels)
        rows["hard_labels"].append(labels)
    return Dataset.from_dict(rows)


@pytest.fixture(scope="module")
def trained(request, tiny_dir, tmp_path_factory):
    """A PRM trained on the toy labels with the readout ``request.param``: (readout, folder, train result)."""
    readout = request.param
    out = tmp_path_factory.mktemp(f"prm-{readout}") / "prm"
    epochs = 12 if readout == "tokens" else 6  # the token readout first has to find which token to blame
    result = train_prm(toy_dataset(), tiny_dir, RewardModelConfig(output_dir=str(out), epochs=epochs, batch_size=16,
                                                                  learning_rate=3e-3, logging_steps=5,
                                                                  readout=readout))
    return readout, out, result


PARTIALS = (["1+1\n"] * 3, ["1+1=2\n1+1=3\n", "1+1=2\n1+1=2", ""])


@pytest.mark.parametrize("trained", ["likelihood", "tokens", "step_end"], indirect=True)
def test_prm_learns_step_labels_and_scores_partials(trained, arith_task):
    from roadmap.core.stats import roc_auc

    readout, out, result = trained
    assert result["final_loss"] < 0.6 * result["first_loss"]
    assert result["eval_auc"] is not None and result["eval_auc"] > 0.9
    meta = json.loads((out / "reward_model.json").read_text())
    assert meta["kind"] == "prm" and meta["readout"] == readout
    assert not (out / "trainer").exists() and not list(out.parent.glob(".prm.*"))

    prm = ProcessRewardModel.from_pretrained(out)
    assert prm.readout == readout
    scores = prm.step_scores(*PARTIALS)
    assert len(scores[0]) == 2 and len(scores[1]) == 2 and scores[2] == []
    assert prm.scored_tokens >= 2 * len("1+1\n1+1=2\n1+1=2")  # two rows read, the empty one skipped
    assert scores[0][0] > 0.5 and scores[0][1] < scores[0][0] - 0.2
    truth, flat = [], []
    for row in toy_dataset(60):
        s = prm.step_scores([row["prompt"]], ["\n".join(row["steps"])])[0]
        flat += s
        truth += row["hard_labels"]
    assert roc_auc(flat, truth) > 0.9

    problem = arith_task.make_problem("1+1")
    scorer = PRMScorer(prm, arith_task, aggregation="min")
    good, bad, empty = scorer.score(problem, ["1+1=2\nAnswer: 2", "1+1=3\nAnswer: 3", ""])
    assert good > bad and empty == 0.0


# the noisy-OR "tokens" head is slower to calibrate on 160 toy rows; its ranking is checked above
@pytest.mark.parametrize("trained", ["likelihood", "step_end"], indirect=True)
def test_calibrated_readouts_put_a_wrong_step_below_one_half(trained):
    _, out, _ = trained
    assert ProcessRewardModel.from_pretrained(out).step_scores(*PARTIALS)[0][1] < 0.5


# a product over a growing prefix never rises ("step_end" reads each step on its own)
@pytest.mark.parametrize("trained", ["likelihood", "tokens"], indirect=True)
def test_product_readouts_never_rise_along_a_solution(trained):
    _, out, _ = trained
    scores = ProcessRewardModel.from_pretrained(out).step_scores(*PARTIALS)
    assert all(b <= a + 1e-6 for s in scores for a, b in zip(s, s[1:]))


@pytest.mark.parametrize("readout", ["likelihood", "tokens", "step_end"])
def test_batched_scores_match_unbatched(tiny_dir, tmp_path, readout):
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    from rewards.prm import _with_calibration

    if readout == "likelihood":
        model = _with_calibration(AutoModelForCausalLM.from_pretrained(tiny_dir), 2.0, 6.0)
    else:
        model = AutoModelForTokenClassification.from_pretrained(tiny_dir, num_labels=1)
    prm = ProcessRewardModel(model, AutoTokenizer.from_pretrained(tiny_dir), batch_size=4, readout=readout)
    texts = ["1+2=3\n3+4=7", "1+2=3", "9-9=0\n0+1=1\nAnswer: 1", "5+5=10\n"]
    batched = prm.step_scores(["q\n"] * 4, texts)
    for t, b in zip(texts, batched):
        single = prm.step_scores(["q\n"], [t])[0]
        assert all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(single, b))


def test_not_a_reward_model_folder(tiny_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="a policy, not a reward model"):
        ProcessRewardModel.from_pretrained(tiny_dir)
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        ProcessRewardModel.from_pretrained(tmp_path)


def test_bad_training_input(tiny_dir, tmp_path):
    from datasets import Dataset

    with pytest.raises(ValueError, match="labels="):
        RewardModelConfig(labels="fuzzy")
    with pytest.raises(ValueError, match="readout="):
        RewardModelConfig(readout="middle")
    empty = Dataset.from_dict({"problem_id": ["a"], "prompt": ["q"], "steps": [[]], "soft_labels": [[]],
                               "hard_labels": [[]]})
    with pytest.raises(ValueError, match="no solution with steps"):
        train_prm(empty, tiny_dir, RewardModelConfig(output_dir=str(tmp_path / "x")))
    nan = Dataset.from_dict({"problem_id": ["a"], "prompt": ["q"], "steps": [["1"]], "soft_labels": [[float("nan")]],
                             "hard_labels": [[0.0]]})
    with pytest.raises(ValueError, match="NaN label"):
        train_prm(nan, tiny_dir, RewardModelConfig(output_dir=str(tmp_path / "x")))
    with pytest.raises(FileNotFoundError, match="config.json"):
        train_prm(toy_dataset(4), tmp_path, RewardModelConfig(output_dir=str(tmp_path / "x")), tokenizer=object())


def test_held_out_split_is_by_whole_problem():
    from rewards.prm_training import split_by_problem

    rows = [{"problem_id": f"p{i % 40}", "prompt": f"{i % 40}+1\n"} for i in range(200)]  # 5 rows a problem
    train, evals = split_by_problem(rows, 0.25)
    held = {r["problem_id"] for r in evals}
    assert held and {r["problem_id"] for r in train}.isdisjoint(held)
    assert len(evals) == 5 * len(held)  # every row of a held-out problem, none of the others
    assert split_by_problem(list(reversed(rows)), 0.25)[1] == list(reversed(evals))  # not by row order
    no_ids = [{"problem_id": "", "prompt": r["prompt"]} for r in rows]  # keyed by the prompt instead
    assert len(split_by_problem(no_ids, 0.25)[1]) % 5 == 0 and 0 < len(split_by_problem(no_ids, 0.25)[1]) < 200
    assert split_by_problem(rows, 0.0) == (rows, [])


@pytest.mark.parametrize("trained", ["likelihood", "tokens", "step_end"], indirect=True)
def test_training_that_helps_saves_a_later_step(trained):
    _, _, result = trained
    history = result["eval_history"]
    assert history[0]["step"] == 0 and history[0]["auc"] == result["init_eval_auc"]
    assert history[-1]["step"] == result["steps"] and len(history) >= 3  # init, each epoch, the last step
    assert result["chosen_step"] > 0 and not result["kept_init"]
    best = max(h["auc"] for h in history)
    assert best > result["init_eval_auc"]
    chosen = [h for h in history if h["step"] == result["chosen_step"]][0]
    assert chosen["auc"] == best  # and among the best AUCs, the lowest held-out loss
    assert chosen["loss"] == min(h["loss"] for h in history if h["auc"] == best)
    assert math.isclose(result["eval_auc"], best, abs_tol=1e-6)  # the saved model is the chosen one
    assert result["eval_problems"] > 0


@pytest.mark.parametrize("trained", ["step_end"], indirect=True)
def test_training_that_hurts_keeps_the_initialisation(trained, tmp_path):
    """An absurd learning rate wrecks a good PRM; the saved one is still the initialisation."""
    _, good, _ = trained
    out = tmp_path / "wrecked"
    result = train_prm(toy_dataset(), good, RewardModelConfig(output_dir=str(out), epochs=2, batch_size=16,
                                                              learning_rate=5.0, readout="step_end"))
    history = result["eval_history"]
    later = [h["auc"] for h in history[1:]]
    assert later and all(math.isnan(a) or a < result["init_eval_auc"] - 0.05 for a in later)  # training hurt
    assert result["kept_init"] and result["chosen_step"] == 0 and result["steps"] > 0
    assert result["eval_auc"] >= result["init_eval_auc"] - 1e-6
    before = ProcessRewardModel.from_pretrained(good).step_scores(*PARTIALS)
    after = ProcessRewardModel.from_pretrained(out).step_scores(*PARTIALS)
    assert all(math.isclose(a, b, abs_tol=1e-5) for x, y in zip(before, after) for a, b in zip(x, y))

    last = train_prm(toy_dataset(), good, RewardModelConfig(output_dir=str(tmp_path / "last"), epochs=2,
                                                            batch_size=16, learning_rate=5.0, readout="step_end",
                                                            keep_best=False))
    assert last["eval_history"] == [] and last["eval_auc"] < result["eval_auc"] - 0.05  # what keep_best prevents


def _short_context_prm(tiny_dir, limit):
    """The tiny policy's untrained likelihood PRM, told it reads only ``limit`` positions."""
    prm = ProcessRewardModel.from_policy(tiny_dir)
    prm.model.config.max_position_embeddings = limit
    return prm


def test_a_candidate_past_the_positions_is_cut_and_counted(tiny_dir, arith_task, caplog):
    prm = _short_context_prm(tiny_dir, 24)
    problem = arith_task.make_problem("1+1")
    prompt = arith_task.prompt(problem)
    steps = ["1+1=2", "2+0=2", "2+0=2", "2+0=2", "Answer: 2"]  # ~30 tokens with the prompt: past 24
    long, fits = "\n".join(steps), "\n".join(steps[:2])
    n = len(encode_steps(prm.tokenizer, prompt, steps, "\n")[0])
    assert n > 24
    cut, whole = prm.step_scores([prompt, prompt], [long, fits])
    assert len(cut) == len(steps) and prm.truncated == 1 and prm.last_truncated == [0]
    inside = [k for k in encode_steps(prm.tokenizer, prompt, steps, "\n")[2] if k < 24]
    assert 0 < len(inside) < len(steps)
    # the steps that fit keep the scores of the uncut text (causal attention); the rest score 0.0
    assert all(math.isclose(a, b, abs_tol=1e-5) for a, b in zip(cut, whole))
    assert cut[len(inside):] == [0.0] * (len(steps) - len(inside)) and all(s > 0 for s in cut[: len(inside)])

    scorer = PRMScorer(prm, arith_task, aggregation="min")
    assert scorer.score(problem, [long, fits])[0] == 0.0  # never chosen for what was not read
    scorer.score(problem, [long])
    assert scorer.truncated[problem.id] == 2
    warned = [r.message for r in caplog.records if "longer than the reward model's 24 positions" in r.message]
    assert len(warned) == 1 and "--max-solution-steps" in warned[0]  # three cut scorings, one warning


def test_a_search_survives_candidates_past_the_positions(tiny_dir, tiny_policy, arith_task, caplog):
    from rewards.prm import PRMLengthError
    from roadmap.app.evaluate import evaluate_search
    from roadmap.core import Lengths

    problems = arith_task.problems("test", 6, seed=3)
    prompt = max(len(ProcessRewardModel.from_policy(tiny_dir).tokenizer(arith_task.prompt(p))["input_ids"])
                 for p in problems)
    scorer = PRMScorer(_short_context_prm(tiny_dir, prompt + 8), arith_task)  # room for a step or so
    report = evaluate_search(tiny_policy, arith_task, problems, method="beam", budget=4, scorer=scorer,
                             progress=False, lengths=Lengths(max_steps=4, max_step_tokens=16))
    assert report.n == len(problems)
    assert report.scorer_truncated > 0 and report.scorer_truncated == sum(scorer.truncated.values())
    assert sum(r["scorer_truncated"] for r in report.records) == report.scorer_truncated
    assert "a candidate can reach about" in caplog.text and "--max-solution-steps" in caplog.text  # before the run

    with pytest.raises(PRMLengthError, match="no step could be scored"):
        evaluate_search(tiny_policy, arith_task, problems, method="beam", budget=4, progress=False,
                        scorer=PRMScorer(_short_context_prm(tiny_dir, prompt), arith_task))


@pytest.mark.parametrize("readout", ["likelihood", "step_end"])
def test_likelihood_never_judges_a_delimiter_the_model_did_not_write(tiny_dir, readout):
    """A finished solution ends in EOS, not in the delimiter that encode_steps appends after its last step: the
    likelihood readout must not judge that token (the policy gives it ~1e-7 after an answer line, which put every
    finished solution's last step near 0), in scoring and in training alike; a search step that stopped on the
    delimiter keeps it judged, and a head readout judges every token."""
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    from rewards.prm import _with_calibration
    from rewards.prm_training import _rows

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    if readout == "likelihood":
        model = _with_calibration(AutoModelForCausalLM.from_pretrained(tiny_dir), 2.0, 6.0)
    else:
        model = AutoModelForTokenClassification.from_pretrained(tiny_dir, num_labels=1)
    prm = ProcessRewardModel(model, tok, readout=readout)
    finished, stopped = prm.step_scores(["q\n"] * 2, ["1+2=3\n3+4=7", "1+2=3\n3+4=7\n"])
    assert finished[0] == pytest.approx(stopped[0])
    if readout == "likelihood":
        assert finished[1] > stopped[1]  # one judged factor fewer: the unwritten delimiter
    else:
        assert finished[1] == pytest.approx(stopped[1])
    rows, _ = _rows([{"prompt": "q\n", "steps": ["1+2=3", "3+4=7"], "hard_labels": [1.0, 1.0]}], tok, "\n",
                    "hard_labels", 512, readout)
    assert rows[0]["end"] == len(rows[0]["input_ids"]) - (readout == "likelihood")


@pytest.mark.parametrize("trained", ["likelihood"], indirect=True)
def test_selection_auc_ranks_solutions_within_a_problem(trained):
    """The held-out measure selection needs: a trained PRM ranks a problem's right solution above its wrong one;
    a scorer that prefers the wrong one scores below one half; training records it (None here: every toy
    problem has one solution)."""
    from rewards.prm_metrics import selection_auc

    _, out, result = trained
    assert result["eval_selection_auc"] is None and result["eval_selection_problems"] == 0
    rows = [{"problem_id": f"p{i // 2}", "prompt": "1+1\n", "steps": ["1+1=2", "1+1=2" if i % 2 == 0 else "1+1=3"],
             "correct": i % 2 == 0} for i in range(8)]
    auc, mixed = selection_auc(ProcessRewardModel.from_pretrained(out), rows)
    assert mixed == 4 and auc > 0.9

    class Contrarian:  # scores a solution by how wrong it is
        kind, step_delimiter = "prm", "\n"

        def step_scores(self, prompts, texts):
            return [[0.9 if t.endswith("3") else 0.1] for t in texts]

    assert selection_auc(Contrarian(), rows) == (0.0, 4)


@pytest.mark.parametrize("trained", ["likelihood"], indirect=True)
def test_ratio_readout_is_what_training_added(trained, tiny_dir, arith_task, tmp_path):
    """The ratio readout scores sigma(log s_trained - log s_init): 0.5 where training changed nothing; on the toy
    labels the wrong step's log-ratio is below the right one's (the random init is so unsure of every token that
    both ratios are large). Loaded through --prm-format ratio, it finds the init through the PRM folder's marker
    and refuses when that folder is gone."""
    import shutil

    from rewards import RatioPRM, load_step_scorer

    _, out, _ = trained
    ratio = RatioPRM.from_pretrained(out)
    prompts, texts = ["1+1\n"] * 2, ["1+1=2\n1+1=2", "1+1=2\n1+1=3"]
    a = ProcessRewardModel.from_pretrained(out).step_scores(prompts, texts)
    b = ProcessRewardModel.from_policy(tiny_dir).step_scores(prompts, texts)
    got = ratio.step_scores(prompts, texts)
    for ga, aa, bb in zip(got, a, b):
        assert ga == pytest.approx([1 / (1 + math.exp(-(math.log(x) - math.log(y)))) for x, y in zip(aa, bb)])
    lr = [[math.log(x) - math.log(y) for x, y in zip(aa, bb)] for aa, bb in zip(a, b)]
    assert lr[1][1] < lr[0][1]  # training taught that '1+1=3' is worse, relative to the init, than '1+1=2'
    same = RatioPRM(ProcessRewardModel.from_policy(tiny_dir), ProcessRewardModel.from_policy(tiny_dir))
    assert all(x == pytest.approx(0.5) for row in same.step_scores(prompts, texts) for x in row)
    scorer = load_step_scorer(out, arith_task, prm_format="ratio")
    assert isinstance(scorer.prm, RatioPRM)
    # the init folder gone: one clear error naming it and the fix
    moved = tmp_path / "prm"
    shutil.copytree(out, moved)
    marker = json.loads((moved / ".o1-roadmap.json").read_text())
    marker["inputs"]["init"]["path"] = str(tmp_path / "gone")
    (moved / ".o1-roadmap.json").write_text(json.dumps(marker))
    with pytest.raises(Exception, match="gone.*--prm-format roadmap"):
        RatioPRM.from_pretrained(moved)
    with pytest.raises(Exception, match="ratio readout divides two likelihood PRMs"):
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        head = ProcessRewardModel(AutoModelForTokenClassification.from_pretrained(tiny_dir, num_labels=1),
                                  AutoTokenizer.from_pretrained(tiny_dir), readout="step_end")
        RatioPRM(head, ProcessRewardModel.from_policy(tiny_dir))
