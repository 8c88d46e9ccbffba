#!/usr/bin/env python3
"""Writes recipes/tiny/chat.jsonl: the quickstart's small SFT set, one conversation per line.

ProLong's SFT uses UltraChat; the tiny recipe needs something a model of a few million
parameters can learn in a minute, so these are short synthetic conversations of a few kinds:
looking a key up in a JSON object (the skill HELMET's JSON KV recall task scores), repeating a
list backwards, adding numbers, and counting words. Deterministic: the same file every time.

Usage: make_chat_set.py > recipes/tiny/chat.jsonl
"""

import json
import random
import sys
import uuid

WORDS = ("long context model reads whole books and code repositories packs documents into "
         "sequences rotary position base grows with length attention sees every token").split()


def key_lookup(rng):
    pairs = {str(uuid.UUID(int=rng.getrandbits(128))): str(uuid.UUID(int=rng.getrandbits(128)))
             for _ in range(rng.randint(2, 6))}
    key = rng.choice(list(pairs))
    question = (f"JSON data:\n{json.dumps(pairs)}\n\nExtract the value corresponding to the "
                f"specified key in the JSON object below.\nKey: \"{key}\"\nCorresponding value:")
    return question, pairs[key]


def reverse_list(rng):
    items = rng.sample(WORDS, rng.randint(3, 7))
    return f"Repeat these words in reverse order: {' '.join(items)}", " ".join(reversed(items))


def add_numbers(rng):
    a, b = rng.randint(0, 999), rng.randint(0, 999)
    return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."


def count_words(rng):
    items = [rng.choice(WORDS) for _ in range(rng.randint(2, 12))]
    return f"How many words are in this text: {' '.join(items)}", f"It has {len(items)} words."


def main():
    rng = random.Random(20240801)
    kinds = [key_lookup, key_lookup, reverse_list, add_numbers, count_words]
    for index in range(600):
        question, answer = kinds[index % len(kinds)](rng)
        conversation = {"messages": [{"role": "user", "content": question},
                                     {"role": "assistant", "content": answer}]}
        sys.stdout.write(json.dumps(conversation) + "\n")


if __name__ == "__main__":
    main()
