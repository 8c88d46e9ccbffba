"""Stems words with NLTK's PorterStemmer() as rouge-score calls it (the reference for
porter_stemmer_test). Usage: nltk_stem.py WORDS_FILE OUT_FILE; one word per line in each,
UTF-8, the stems in the order of the words."""

import sys

from nltk.stem import porter


def main():
    words_path, out_path = sys.argv[1], sys.argv[2]
    with open(words_path, encoding="utf-8") as f:
        words = f.read().split("\n")
    if words and words[-1] == "":
        words.pop()
    stemmer = porter.PorterStemmer()
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(stemmer.stem(word) for word in words))
        f.write("\n")


if __name__ == "__main__":
    main()
