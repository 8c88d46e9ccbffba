"""The Python side of python_parity_test: HELMET's text rules (princeton-nlp/HELMET utils.py
normalize_answer, parse_output, parse_rankings; rouge-score's tokenizer) restated on Python's
own str and re, run over probes that put code points next to articles, sigmas, digits and
answer prefixes.

Usage: python_reference.py text BLOCKS_JSON OUT_FILE. BLOCKS_JSON is a list of lists of code
points; for each block one line of OUT_FILE holds the SHA-256 (hex) of its results, built
exactly as python_parity_test.cc builds them:
  probe   = concatenation over the block of
            "A" c SIGMA " " c SIGMA c "x" SIGMA c " the" c "a 1" c ">2 "
  results = [probe.lower(), normalize(probe), rankings as "id<GS>score" joined by <US>,
             ROUGE tokens joined by <US>, then for BMP code points the four parses below]
  digest  = sha256 of the results joined by <RS>, UTF-8

       python_reference.py numbers NUMBERS_JSON OUT_FILE. NUMBERS_JSON is
{"arrays": [[float...]...], "values": [float...]}; OUT_FILE gets repr(numpy.mean(array)) per
array, then repr(round(value, 5)) per value, one per line (HELMET's averaging and rounding).
"""

import hashlib
import json
import re
import string
import sys

from nltk.stem import porter

STEMMER = porter.PorterStemmer()
PUNCTUATION = set(string.punctuation)
RS, US, GS = "\x1e", "\x1f", "\x1d"


def normalize(text):
    text = text.lower()
    text = "".join(c for c in text if c not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def parse(text, prefix):
    found = re.search(f"(?:{prefix})(.*)(?:\n|$)", text, flags=re.IGNORECASE)
    if found is None:
        found = re.search(r"(?:^)(.*)(?:\n|$)", text)
    rest = found[1].strip()
    rest = re.sub(f"^{re.escape(prefix)}", "", rest, flags=re.IGNORECASE)
    return rest.strip()


def rankings(text):
    text = re.sub(r"[\[\]:]", "", text).lower().replace("id", "")
    longest = ""
    for match in re.finditer(r"(\d+)(?:\s*>\s*(\d+))*", text):
        if len(match.group(0)) > len(longest):
            longest = match.group(0)
    if longest:
        ids = [part.strip() for part in longest.split(">") if part.strip().isdigit()]
    else:
        ids = [text]
    ranked = {}
    for position, doc_id in enumerate(ids):
        ranked.setdefault(doc_id, len(ids) - position)
    return ranked


def rouge_tokens(text):
    text = re.sub(r"[^a-z0-9]+", " ", text.lower())
    tokens = [STEMMER.stem(t) if len(t) > 3 else t for t in re.split(r"\s+", text)]
    return [t for t in tokens if re.match(r"^[a-z0-9]+$", t)]


def digest(block):
    chars = [chr(c) for c in block]
    probe = "".join(f"A{c}\u03a3 {c}\u03a3{c}x\u03a3{c} the{c}a 1{c}>2 " for c in chars)
    results = [
        probe.lower(),
        normalize(probe),
        US.join(f"{doc_id}{GS}{score}" for doc_id, score in rankings(probe).items()),
        US.join(rouge_tokens(probe)),
    ]
    for c in chars:
        if ord(c) > 0xFFFF:
            continue
        results.append(parse(f"x\nANSWER:{c}answer:{c}y{c}\r\nz", "Answer:"))
        results.append(parse(f"{c}nswer: q\nAnswer: r", "Answer:"))
        results.append(parse(f"an{c}wer: q\nAnswer: r", "Answer:"))
        results.append(parse(f"correspond{c}ng value: q\nx", "corresponding value:"))
    return hashlib.sha256(RS.join(results).encode("utf-8")).hexdigest()


def numbers(inputs):
    import numpy as np

    lines = [repr(float(np.mean(array))) for array in inputs["arrays"]]
    lines += [repr(round(value, 5)) for value in inputs["values"]]
    return lines


def main():
    mode, in_path, out_path = sys.argv[1:4]
    with open(in_path, encoding="utf-8") as f:
        inputs = json.load(f)
    lines = [digest(block) for block in inputs] if mode == "text" else numbers(inputs)
    with open(out_path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line)
            f.write("\n")


if __name__ == "__main__":
    main()
