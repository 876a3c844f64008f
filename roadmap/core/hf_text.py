"""Text and token ids for ``HFPolicy``, so that stepwise text is exactly the model's own document.

Stepwise search (arXiv:2305.20050, arXiv:2408.03314) samples a step, appends its text to the
prefix and samples the next step from that text. The joined steps are the document the model
wrote only if text and ids round-trip at every step boundary, and done naively they do not:

* decoding the generated ids alone loses what depends on their left context: a SentencePiece
  (Metaspace) decoder drops the leading space of the first piece ("Tom has 5" + "▁Tom" gives
  "Tom has 5Tom"), and a character whose bytes are split over tokens decodes to U+FFFD.
  ``continuation_text`` decodes the ids after the last tokens of the prefix and subtracts the
  prefix's text; an incomplete trailing character is held back until its last byte arrives.
* re-encoding ``prefix + text`` can tokenize differently from the ids the model generated (BPE
  merges across the boundary), so the next step would condition on another document and miss
  the KV prefix cache. ``DocumentMemory`` remembers the ids of the documents the policy itself
  produced, and ``encode_prefix`` returns them.
* a chat template that writes the BOS token (Llama-3's ``<|begin_of_text|>``) gets a second one
  from ``add_special_tokens=True``; ``encode_document`` adds special tokens only to text that
  does not already start with the BOS token.
"""

from __future__ import annotations

import os
from collections import Counter, OrderedDict
from collections.abc import Sequence

from roadmap.core.errors import ConfigError

__all__ = ["DocumentMemory", "as_stop_list", "continuation_text", "encode_document", "encode_prefix", "token_texts",
           "unknown_characters", "report_unknown_characters"]

#: prefix tokens decoded before the generated ones: enough left context for any decoder we know
_CONTEXT_TOKENS = 8
#: characters that bucket remembered documents, so a lookup only compares documents of one prompt
_HEAD_CHARS = 64


def as_stop_list(stop: str | Sequence[str] | None) -> list[str]:
    """``stop`` as a list of non-empty stop strings (None: no stop string)."""
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else list(stop)
    if any(not s for s in stops):
        raise ConfigError(f"stop={stop!r} contains an empty string; pass None for no stop string")
    return stops


def check_sample_args(n: int, temperature: float, top_p: float, max_new_tokens: int) -> None:
    """Refuse ``Policy.sample`` arguments no backend can honour, naming the argument."""
    if n < 1:
        raise ConfigError(f"n={n} must be at least 1")
    if temperature < 0:
        raise ConfigError(f"temperature={temperature} must be >= 0 (0 means greedy)")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p={top_p} must lie in (0, 1]")
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens={max_new_tokens} must be at least 1")


def _decode(tokenizer, seqs: list[list[int]]) -> list[str]:
    return tokenizer.batch_decode(seqs, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def continuation_text(tokenizer, context: Sequence[int], generated: Sequence[int]) -> tuple[str, bool]:
    """The text ``generated`` adds to the document whose ids are ``context``, and whether it is complete.

    decode(tail + generated) minus decode(tail), with ``tail`` the last few ids of ``context``;
    special tokens are skipped. An incomplete character at the end (its last bytes are not yet
    generated) is held back, so the second value is False; the next call, given the ids that
    complete it, starts with that character. Joining the texts of consecutive pieces of one
    generation therefore gives the text of the whole generation.
    """
    if not generated:
        return "", True
    generated = list(generated)
    for tail in (list(context[-_CONTEXT_TOKENS:]), list(context)):
        before, after = _decode(tokenizer, [tail, tail + generated])
        settled = before.rstrip("\ufffd")
        if after.startswith(settled):
            break
    else:  # no decoder we know gets here: keep what the two texts do not share
        settled = os.path.commonprefix([settled, after])
    text = after[len(settled):]
    whole = text.rstrip("\ufffd")
    return whole, len(whole) == len(text)


def token_texts(tokenizer) -> list[str]:
    """The text of every token id, alone and after another token (both, concatenated, when they differ).

    Both, because a decoder may write a token differently at the start of a text (Metaspace
    drops the leading space of "▁Tom") than inside it, and stop strings are found inside.
    """
    vocab = len(tokenizer)
    alone = _decode(tokenizer, [[i] for i in range(vocab)])
    anchor = tokenizer("0", add_special_tokens=False)["input_ids"][-1:]
    head = _decode(tokenizer, [anchor])[0]
    inside = _decode(tokenizer, [anchor + [i] for i in range(vocab)])
    return [a if b == a else a + b for a, b in
            zip(alone, (t[len(head):] if t.startswith(head) else t for t in inside))]


def encode_document(tokenizer, text: str) -> list[int]:
    """Ids of ``text`` as the start of a document: with the tokenizer's special tokens (e.g. BOS),
    unless ``text`` already starts with the BOS token (a chat template wrote it)."""
    bos = getattr(tokenizer, "bos_token", None)
    add = not (bos and text.startswith(bos))
    return tokenizer(text, add_special_tokens=add)["input_ids"]


class DocumentMemory:
    """Bounded LRU map from the text of a document the policy produced to the ids it produced it as.

    Args:
        max_tokens: most remembered ids, summed over documents; the least recently used
            documents are forgotten beyond it.
    """

    def __init__(self, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ConfigError(f"max_tokens={max_tokens} must be at least 1")
        self.max_tokens = max_tokens
        self.tokens = 0
        self._docs: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._lengths: dict[str, Counter[int]] = {}  # head -> lengths of the documents starting with it

    def __len__(self) -> int:
        return len(self._docs)

    def put(self, text: str, ids: Sequence[int]) -> None:
        """Remember that the policy produced ``text`` as ``ids``."""
        if not text or len(ids) > self.max_tokens:
            return
        if text in self._docs:
            self._docs.move_to_end(text)
            return
        self._docs[text] = tuple(ids)
        self._lengths.setdefault(text[:_HEAD_CHARS], Counter())[len(text)] += 1
        self.tokens += len(ids)
        while self.tokens > self.max_tokens:
            old, old_ids = self._docs.popitem(last=False)
            self.tokens -= len(old_ids)
            lengths = self._lengths[old[:_HEAD_CHARS]]
            lengths[len(old)] -= 1
            if not lengths[len(old)]:
                del lengths[len(old)]
                if not lengths:
                    del self._lengths[old[:_HEAD_CHARS]]

    def longest_prefix(self, text: str) -> tuple[int, tuple[int, ...]] | None:
        """The longest remembered document that ``text`` starts with: (its length in characters, its ids)."""
        ids = self._docs.get(text)
        if ids is not None:
            self._docs.move_to_end(text)
            return len(text), ids
        heads = [text[:_HEAD_CHARS]] + [text[:n] for n in range(min(len(text), _HEAD_CHARS) - 1, 0, -1)]
        for head in heads:
            for n in sorted(self._lengths.get(head, ()), reverse=True):
                key = text[:n]
                if n < len(text) and key in self._docs:
                    self._docs.move_to_end(key)
                    return n, self._docs[key]
        return None

    def clear(self) -> None:
        self._docs.clear()
        self._lengths.clear()
        self.tokens = 0


def encode_prefix(tokenizer, memory: DocumentMemory | None, text: str) -> list[int]:
    """Ids of the document ``text``: the policy's own ids for the longest part of it the policy
    produced (``memory``), then the encoding of the rest when that decodes back to the rest
    exactly; otherwise ``encode_document(text)``."""
    hit = memory.longest_prefix(text) if memory is not None else None
    if hit is not None:
        length, ids = hit
        if length == len(text):
            return list(ids)
        rest = text[length:]
        rest_ids = tokenizer(rest, add_special_tokens=False)["input_ids"]
        if continuation_text(tokenizer, ids, rest_ids) == (rest, True):
            return list(ids) + rest_ids
    return encode_document(tokenizer, text)


def unknown_characters(tokenizer, texts: Sequence[str]) -> Counter:
    """The characters of ``texts`` (with their counts) that ``tokenizer`` cannot write: encoded to its
    unknown token, or to nothing at all (a BPE without an unknown token drops them). Whitespace is left out
    (tokenizers fold it into neighbouring tokens)."""
    counts = Counter(ch for text in texts for ch in text if not ch.isspace())
    unk = getattr(tokenizer, "unk_token_id", None)
    bad: Counter[str] = Counter()
    for ch, n in counts.items():
        ids = tokenizer(ch, add_special_tokens=False)["input_ids"]
        if not ids or (unk is not None and unk in ids):
            bad[ch] = n
    return bad


def report_unknown_characters(tokenizer, task, problems, model: str, logger) -> Counter:
    """Warn (on ``logger``) when the prompts and reference solutions of ``problems`` hold characters outside
    ``tokenizer``'s vocabulary: how many, a few examples with the problem holding each, and the data file.
    The model would otherwise read them silently as <unk> (or not at all). Returns the counts."""
    texts = {p.id: " ".join([task.prompt(p), *p.steps, str(p.answer)]) for p in problems}
    bad = unknown_characters(tokenizer, list(texts.values()))
    if bad:
        first = {ch: next(pid for pid, t in texts.items() if ch in t) for ch, _ in bad.most_common(3)}
        examples = ", ".join(f"{ch!r} x{bad[ch]} (first in {pid})" for ch, pid in first.items())
        source = getattr(task, "source", None)
        logger.warning("%s: %d distinct character(s), %d occurrence(s), are outside the vocabulary of the tokenizer "
                       "of %s, e.g. %s; the model reads them as <unk> or not at all: clean the data, or use a model "
                       "whose tokenizer covers them (e.g. `roadmap tiny` built on this data)",
                       f"{task.name} data {str(source)!r}" if source else f"task {task.name!r}", len(bad),
                       sum(bad.values()), model, examples)
    return bad
