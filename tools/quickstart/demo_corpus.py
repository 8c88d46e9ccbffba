#!/usr/bin/env python3
"""Builds the quickstart's demo corpus from what a Debian machine holds, in ProLong's domains.

ProLong trains on long documents (code repositories, books) mixed with ShortMix's short texts.
This machine's stand-ins, all read-only sources that a Debian install with prolong's packages has:

  code_repos     source trees (this repository, Python packages, C/C++ header trees), one
                 directory per repository document (`data ingest --format repo`)
  books          long texts (licenses, changelogs, NEWS and manuals under /usr/share/doc), one
                 file per document (`--format text`)
  books_heldout  every sixth of those long texts, never trained on: the loss-by-position
                 measurement reads them
  fineweb        short paragraphs of release notes and changelogs (JSONL, one text per line)
  fineweb_edu    short paragraphs of READMEs and documentation
  stackexchange  Python docstrings: technical questions answered in prose

Usage: demo_corpus.py OUT [--short] [--repository DIR]. Writes OUT/<domain>/... and
OUT/tokenizer_sample.txt (a sample of every domain, for training the tokenizer). The output
depends only on the files found, read in sorted order; OUT must not exist yet (the caller
builds into a temporary directory and renames it, so a half-built corpus is never used).
"""

import argparse
import gzip
import json
import os
import re
import shutil
import sys

SOURCE_SUFFIXES = (".py", ".h", ".hpp", ".hh", ".cc", ".cpp", ".c", ".proto", ".sh", ".js", ".bzl",
                   ".md", ".rst", ".txt")
LONG_TEXT_NAMES = re.compile(r"^(changelog|NEWS|HISTORY|README|copyright|.*\.txt)(\.Debian)?(\.gz)?$",
                             re.IGNORECASE)


def read_text(path, limit):
    """The file's first `limit` bytes as UTF-8 text (gzip decompressed), or None."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read(limit)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError):
        return None
    return text if "\0" not in text else None


def walk_files(root):
    """Every regular file under root, sorted, skipping hidden and build directories."""
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "bazel-", "__pycache__",
                                                               "node_modules")))
        for name in sorted(files):
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def copy_repository(source, target, budget):
    """Copies source files of `source` into `target` until `budget` bytes; their total."""
    total = 0
    for path in walk_files(source):
        if not path.endswith(SOURCE_SUFFIXES):
            continue
        size = os.path.getsize(path)
        if size == 0 or size > budget // 4 or total + size > budget:
            continue
        if read_text(path, size) is None:
            continue
        destination = os.path.join(target, os.path.relpath(path, source))
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(path, destination)
        total += size
    return total


def repositories(repository):
    """Candidate source trees: this repository, then Python packages and header trees."""
    if repository:
        yield "prolong", repository
    for parent in ("/usr/lib/python3/dist-packages", "/usr/include"):
        if not os.path.isdir(parent):
            continue
        for name in sorted(os.listdir(parent)):
            path = os.path.join(parent, name)
            if os.path.isdir(path) and not name.endswith(("-info", "__pycache__")):
                yield re.sub(r"[^a-z0-9_-]", "-", name.lower()), path


def paragraphs(text, shortest=200, longest=2000):
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if shortest <= len(paragraph) <= longest:
            yield paragraph


def docstrings(text):
    for match in re.finditer(r'"""(.*?)"""', text, re.DOTALL):
        body = match.group(1).strip()
        if 200 <= len(body) <= 2000:
            yield body


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--short", action="store_true", help="a quarter of the corpus")
    parser.add_argument("--repository", help="this repository's root, the first code repository")
    args = parser.parse_args()
    scale = 4 if args.short else 1
    if os.path.exists(args.out):
        sys.exit(f"demo_corpus.py: {args.out} exists; remove it or build elsewhere")

    counts = {}
    sample = []  # tokenizer training text

    # Code repositories: each 64 KB to 320 KB of source files.
    repos_dir = os.path.join(args.out, "code_repos")
    wanted, taken = 48 // scale, 0
    for name, source in repositories(args.repository):
        if taken == wanted:
            break
        target = os.path.join(repos_dir, name)
        if os.path.exists(target):
            continue
        if copy_repository(source, target, 320 * 1024) < 64 * 1024:
            shutil.rmtree(target, ignore_errors=True)
            continue
        taken += 1
        for path in list(walk_files(target))[:3]:
            sample.append(read_text(path, 20000))
    counts["code_repos"] = taken

    # Long texts: 24 KB and more (the first 256 KB of each), each text once (packages share
    # license texts), so no held-out text is also trained on.
    long_texts, seen = [], set()
    for root in ("/usr/share/common-licenses", "/usr/share/doc"):
        if not os.path.isdir(root):
            continue
        for path in walk_files(root):
            if not LONG_TEXT_NAMES.match(os.path.basename(path)) and root == "/usr/share/doc":
                continue
            if os.path.getsize(path) < (24 * 1024 if not path.endswith(".gz") else 8 * 1024):
                continue
            text = read_text(path, 256 * 1024)
            if text is not None and len(text) >= 24 * 1024 and text not in seen:
                seen.add(text)
                long_texts.append((path, text))
            if len(long_texts) == 96 // scale:
                break
    for domain in ("books", "books_heldout"):
        os.makedirs(os.path.join(args.out, domain))
        counts[domain] = 0
    for index, (path, text) in enumerate(long_texts):
        domain = "books_heldout" if index % 6 == 5 else "books"
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.relpath(path, "/usr/share"))
        with open(os.path.join(args.out, domain, name + ".txt"), "w", encoding="utf-8") as f:
            f.write(text)
        counts[domain] += 1
        if domain == "books":
            sample.append(text[:20000])

    # Short texts, one JSONL line each.
    short = {"fineweb": [], "fineweb_edu": [], "stackexchange": []}
    limit = 4000 // scale
    for path in walk_files("/usr/share/doc") if os.path.isdir("/usr/share/doc") else ():
        name = os.path.basename(path).lower()
        if name.startswith(("changelog", "news", "history")):
            domain = "fineweb"
        elif name.startswith("readme") or name.endswith((".md", ".txt")):
            domain = "fineweb_edu"
        else:
            continue
        if len(short[domain]) >= limit:
            continue
        text = read_text(path, 64 * 1024)
        if text is not None:
            short[domain].extend(paragraphs(text))
    for path in walk_files("/usr/lib/python3/dist-packages"):
        if len(short["stackexchange"]) >= limit:
            break
        if path.endswith(".py"):
            text = read_text(path, 256 * 1024)
            if text is not None:
                short["stackexchange"].extend(docstrings(text))
    for domain, texts in short.items():
        texts = texts[:limit]
        with open(os.path.join(args.out, domain + ".jsonl"), "w", encoding="utf-8") as f:
            for text in texts:
                f.write(json.dumps({"text": text}) + "\n")
        counts[domain] = len(texts)
        sample.extend(texts[:400])

    with open(os.path.join(args.out, "tokenizer_sample.txt"), "w", encoding="utf-8") as f:
        for text in sample:
            if text:
                f.write(text.replace("\r", "") + "\n")
    too_few = [domain for domain, count in counts.items() if count == 0]
    if too_few:
        sys.exit(f"demo_corpus.py: found nothing for {', '.join(too_few)} on this machine")
    print(", ".join(f"{domain} {count}" for domain, count in counts.items()))


if __name__ == "__main__":
    main()
