"""Prompt formats: how a task's problem becomes the text a policy continues, and how solutions read.

Three kinds, chosen by config (``PromptFormat``), the CLI (``--prompt-format``) or a recipe
(``prompt:``):

* ``plain``: the task's own prompt ("Question: ...\\nAnswer:\\n", "37+48-91\\n") and solution
  format (one step per line, "Answer: 6" / "#### 72"); the default, what the tiny models learn.
* ``chat``: the policy tokenizer's chat template (``tokenizer.apply_chat_template(messages,
  tokenize=False, add_generation_prompt=True)``) over a system prompt (by default the Qwen2.5-Math
  convention, Yang et al., arXiv 2409.12122) and the question as the user turn. Solutions are
  written as chat models write them: steps separated by a blank line ("\\n\\n", the delimiter
  search-and-learn uses for beam search and DVTS), the answer in "$\\\\boxed{...}$".
* ``fewshot``: ``shots`` solved train problems before the question, as Question/Answer blocks in
  the plain format (Brown et al., arXiv 2005.14165; GSM8K's 8-shot evaluation, Wei et al., arXiv
  2201.11903). ``chat`` with ``shots > 0`` puts them as prior user/assistant turns instead.

Shots are deterministic (the first train problems of ``shot_seed``) and never the problem itself.
``Task.set_prompt_format(fmt, tokenizer)`` binds a format to a task; ``bind_prompt`` is its body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from roadmap.core.errors import ConfigError

if TYPE_CHECKING:
    from roadmap.core.tasks.base import Task
    from roadmap.core.types import Problem

__all__ = ["PromptFormat", "PromptBinding", "adds_bos", "PROMPT_KINDS", "DEFAULT_SYSTEM_PROMPT", "CHAT_STEP_DELIMITER",
           "DEFAULT_SHOTS", "bind_prompt", "chat_answer"]

PROMPT_KINDS = ("plain", "chat", "fewshot")
#: the system prompt of Qwen2.5-Math-Instruct's chain-of-thought evaluation
DEFAULT_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
CHAT_STEP_DELIMITER = "\n\n"
DEFAULT_SHOTS = 4
#: separates the Question/Answer blocks of a plain few-shot prompt
SHOT_SEPARATOR = "\n\n"


def chat_answer(answer: str) -> str:
    """The final step a chat model writes: "Therefore, the final answer is $\\\\boxed{72}$."."""
    return f"Therefore, the final answer is $\\boxed{{{answer}}}$."


@dataclass(frozen=True)
class PromptFormat:
    """How prompts and solutions are written; see the module docstring. Defaults: the plain format."""

    kind: str = field(default="plain", metadata={"help": "plain | chat | fewshot."})
    system_prompt: str | None = field(default=None, metadata={
        "help": "System prompt under chat (None: the Qwen-Math one, DEFAULT_SYSTEM_PROMPT; '': no system turn)."})
    shots: int | None = field(default=None, metadata={
        "help": "Solved train problems before the question (None: 4 under fewshot, 0 otherwise)."})
    step_delimiter: str | None = field(default=None, metadata={
        "help": "Text between solution steps (None: '\\n\\n' under chat, the task's own otherwise)."})
    shot_seed: int = field(default=0, metadata={"help": "Seed of the train problems used as shots."})

    def __post_init__(self) -> None:
        if self.kind not in PROMPT_KINDS:
            raise ConfigError(f"prompt format kind={self.kind!r} is unknown; use one of {PROMPT_KINDS}")
        if self.shots is not None and self.shots < 0:
            raise ConfigError(f"prompt format shots={self.shots} is negative; pass 0 or more")
        if self.kind == "fewshot" and self.shots == 0:
            raise ConfigError("prompt format fewshot with shots=0 has no shots; pass shots >= 1, or kind plain")
        if self.kind == "plain" and self.shots:
            raise ConfigError(f"prompt format plain with shots={self.shots}: shots need kind fewshot (plain "
                              "Question/Answer blocks) or chat (prior turns)")
        if self.step_delimiter is not None and not self.step_delimiter.strip("\t "):
            raise ConfigError(f"step_delimiter={self.step_delimiter!r} must hold a newline or other text; "
                              "pass e.g. '\\n\\n'")
        if self.system_prompt is not None and self.kind != "chat" and self.system_prompt:
            raise ConfigError(f"system_prompt is set but the prompt format is {self.kind!r}; a system prompt "
                              "needs kind chat")

    @property
    def chat(self) -> bool:
        """Whether prompts go through the tokenizer's chat template."""
        return self.kind == "chat"

    @property
    def num_shots(self) -> int:
        """The number of shots this format puts before each question."""
        if self.shots is not None:
            return self.shots
        return DEFAULT_SHOTS if self.kind == "fewshot" else 0

    @property
    def system(self) -> str:
        """The system prompt under chat ("" for none)."""
        return DEFAULT_SYSTEM_PROMPT if self.system_prompt is None else self.system_prompt

    def delimiter(self, plain: str) -> str:
        """The step delimiter under this format, given the task's own (``plain``)."""
        if self.step_delimiter is not None:
            return self.step_delimiter
        return CHAT_STEP_DELIMITER if self.chat else plain

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "system_prompt": self.system_prompt, "shots": self.shots,
                "step_delimiter": self.step_delimiter, "shot_seed": self.shot_seed}


def _tokenizer_name(tokenizer) -> str:
    return str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)


def check_chat_template(tokenizer) -> None:
    """Raise ConfigError, naming the tokenizer and the fix, when it cannot render a chat prompt."""
    if tokenizer is None:
        raise ConfigError("prompt format 'chat' needs the policy's tokenizer; bind it with "
                          "task.set_prompt_format(fmt, tokenizer)")
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"prompt format 'chat' needs a chat template, but the tokenizer of "
                          f"{_tokenizer_name(tokenizer)!r} has none; use --prompt-format plain (or fewshot), or a "
                          "policy whose tokenizer has a chat template (an Instruct model's folder)")


def adds_bos(tokenizer) -> bool:
    """Whether ``tokenizer`` puts its BOS first when it encodes text with its special tokens."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return bos is not None and tokenizer("x")["input_ids"][:1] == [bos]


@dataclass
class PromptBinding:
    """A ``PromptFormat`` bound to a task's shots and the policy's tokenizer (``bind_prompt`` builds it).

    Attributes:
        format: the format.
        tokenizer: the policy's tokenizer (None under plain and fewshot).
        shots: the train problems shown before each question (``format.num_shots`` + 1 of them,
            so that one can be left out when it is the question itself).
        adds_bos: whether the tokenizer puts a BOS token before any text it encodes.
    """

    format: PromptFormat
    tokenizer: Any = None
    shots: list = field(default_factory=list)
    adds_bos: bool = False

    def shots_for(self, problem: Problem) -> list:
        """The ``format.num_shots`` shots for ``problem``: never the problem itself."""
        k = self.format.num_shots
        chosen = [s for s in self.shots if s.question != problem.question][:k]
        if len(chosen) < k:
            raise ConfigError(f"few-shot prompt needs {k} train problems other than the question, found "
                              f"{len(chosen)}; pass fewer shots or a task with more train problems")
        return chosen

    def prompt(self, task: Task, problem: Problem) -> str:
        """The prompt text of ``problem`` under this binding."""
        shots = self.shots_for(problem)
        if not self.format.chat:
            blocks = [task.plain_prompt(s) + task.reference_solution(s) for s in shots]
            return SHOT_SEPARATOR.join([*blocks, task.plain_prompt(problem)])
        messages = [{"role": "system", "content": self.format.system}] if self.format.system else []
        for s in shots:
            messages += [{"role": "user", "content": task.chat_question(s)},
                         {"role": "assistant", "content": task.reference_solution(s)}]
        messages.append({"role": "user", "content": task.chat_question(problem)})
        return self.render(messages)

    def render(self, messages: list[dict[str, str]]) -> str:
        """The chat template's text of ``messages`` with the generation prompt.

        A template that refuses a system turn (Gemma's raises a jinja2 TemplateError) is rendered
        again with the system prompt at the top of the first user turn, as those models' docs
        advise; when that fails too, the error is a ConfigError naming the tokenizer.
        """

        def apply(msgs):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

        try:
            return apply(messages)
        except Exception as first:  # jinja2's errors: transformers renders templates with it
            if messages[0]["role"] != "system":
                raise ConfigError(f"the chat template of {_tokenizer_name(self.tokenizer)!r} failed on a prompt "
                                  f"({type(first).__name__}: {first}); use --prompt-format plain, or fix the "
                                  "template") from first
            merged = [{"role": "user", "content": f"{messages[0]['content']}\n\n{messages[1]['content']}"},
                      *messages[2:]]
            try:
                return apply(merged)
            except Exception as err:
                raise ConfigError(f"the chat template of {_tokenizer_name(self.tokenizer)!r} failed on a prompt, "
                                  f"with a system turn ({first}) and without ({type(err).__name__}: {err}); use "
                                  "--prompt-format plain, or fix the template") from err

    def completion_end(self) -> str:
        """What ends a training completion: the end-of-turn (EOS) token text under chat, else ""."""
        return (self.tokenizer.eos_token or "") if self.format.chat else ""

    def training_prompt(self, text: str) -> str:
        """``text`` as a trainer that encodes with special tokens should see it: a chat prompt that
        starts with the BOS text (Llama-3's template) loses it when the tokenizer adds BOS itself,
        so the encoded prompt holds exactly one BOS."""
        bos = getattr(self.tokenizer, "bos_token", None) if self.format.chat else None
        if self.adds_bos and bos and text.startswith(bos):
            return text[len(bos):]
        return text


def bind_prompt(task: Task, fmt: PromptFormat, tokenizer=None) -> PromptBinding:
    """``fmt`` bound to ``task``: its shots drawn, and under chat the tokenizer's template checked."""
    if not isinstance(fmt, PromptFormat):
        raise ConfigError(f"prompt format {fmt!r} is not a PromptFormat; build one, e.g. PromptFormat(kind='chat')")
    bos_first = False
    if fmt.chat:
        check_chat_template(tokenizer)
        bos_first = adds_bos(tokenizer)
    shots: list = []
    if fmt.num_shots:
        shots = task.problems("train", n=fmt.num_shots + 1, seed=fmt.shot_seed)
        if len(shots) < fmt.num_shots:
            raise ConfigError(f"task {task.name!r} has {len(shots)} train problems; few-shot with "
                              f"shots={fmt.num_shots} needs at least that many. Pass fewer shots")
    return PromptBinding(format=fmt, tokenizer=tokenizer if fmt.chat else None, shots=shots, adds_bos=bos_first)
