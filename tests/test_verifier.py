from rewards import VerifierScorer, get_verifier_reward


def test_scorer_rewards_right_answers_only(arith_task):
    p = arith_task.make_problem("37+48-91")
    right = arith_task.reference_solution(p)
    scores = VerifierScorer(arith_task).score(p, [right, right.replace("Answer: -6", "Answer: 6"), "", "85-91", "@@"])
    assert scores == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_trl_reward_reads_answer_column_and_survives_garbage(arith_task):
    reward = get_verifier_reward(arith_task)
    completions = ["37+48=85\nAnswer: 85", "Answer: 84", "", None, [{"role": "assistant", "content": "Answer: 85"}]]
    out = reward(prompts=["q"] * 5, completions=completions, answer=["85"] * 5, trainer_state=None)
    assert out == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_trl_reward_none_without_reference_and_error_without_column(arith_task):
    import pytest

    reward = get_verifier_reward(arith_task)
    assert reward(prompts=["q", "q"], completions=["Answer: 1", "Answer: 1"], answer=[None, ""]) == [None, None]
    with pytest.raises(KeyError, match="answer_column"):
        reward(prompts=["q"], completions=["Answer: 1"], solution=["1"])


def test_reward_is_picklable(arith_task):
    import pickle

    reward = pickle.loads(pickle.dumps(get_verifier_reward(arith_task, answer_column="target")))
    assert reward(prompts=["q"], completions=["Answer: 3"], target=["3"]) == [1.0]
    assert reward.__name__ == "verifier_arith"




def test_step_verifier_pays_only_for_right_answers_reached_through_right_steps(arith_task):
    import pytest

    from rewards import get_step_verifier_reward

    reward = get_step_verifier_reward(arith_task)
    # "36+62-58": 98 then 40; the second completion's first step is wrong but its errors cancel
    completions = ["36+62=98\n98-58=40\nAnswer: 40", "36+62=106\n106-58=40\nAnswer: 40", "36+62=98\nAnswer: 98"]
    kw = {"answer": ["40"] * 3, "question": ["36+62-58"] * 3}
    assert get_verifier_reward(arith_task)(["q"] * 3, completions, **kw) == [1.0, 1.0, 0.0]
    assert reward(["q"] * 3, completions, **kw) == [1.0, 0.0, 0.0]
    assert reward(["q"], ["Answer: 1"], answer=[None], question=["1+0"]) == [None]
    with pytest.raises(KeyError, match="'question'"):
        reward(["q"], completions[:1], answer=["40"])

    class NoSteps:
        name = "nosteps"

    with pytest.raises(TypeError, match="no step checker"):
        get_step_verifier_reward(NoSteps())
