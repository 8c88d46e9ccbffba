#include "evaluator/tasks/internal/word_lists.h"

#include "absl/strings/str_cat.h"

namespace prolong::evaluator::tasks::internal {
namespace {

const char* const kAdjectives[] = {
    "able",    "acid",    "aged",    "airy",    "alert",    "alive",    "amber",   "ample",
    "ancient", "angry",   "arctic",  "arid",    "avid",     "awake",    "bald",    "balmy",
    "basic",   "bent",    "bitter",  "black",   "bland",    "blank",    "bleak",   "blind",
    "blond",   "blue",    "blunt",   "bold",    "bony",     "bossy",    "bouncy",  "brave",
    "brief",   "bright",  "brisk",   "broad",   "broken",   "bronze",   "brown",   "bumpy",
    "busy",    "calm",    "candid",  "careful", "cheap",    "cheerful", "chilly",  "chubby",
    "civil",   "clean",   "clear",   "clever",  "cloudy",   "clumsy",   "coarse",  "cold",
    "common",  "cool",    "cosmic",  "cozy",    "crisp",    "cruel",    "curly",   "curved",
    "cute",    "damp",    "dapper",  "dark",    "dear",     "deep",     "dense",   "dim",
    "direct",  "dirty",   "distant", "dizzy",   "double",   "drab",     "dry",     "dull",
    "dusty",   "eager",   "early",   "earthy",  "easy",     "elastic",  "elder",   "empty",
    "epic",    "equal",   "even",    "exact",   "exotic",   "faint",    "fair",    "false",
    "famous",  "fancy",   "far",     "fast",    "fat",      "feral",    "fierce",  "filthy",
    "final",   "fine",    "firm",    "flat",    "fluffy",   "fond",     "foolish", "formal",
    "fragile", "frank",   "free",    "fresh",   "friendly", "frozen",   "funny",   "fuzzy",
    "gentle",  "giant",   "gifted",  "glad",    "gloomy",   "glossy",   "golden",  "good",
    "grand",   "gray",    "great",   "green",   "grim",     "gritty",   "grumpy",  "hairy",
    "handy",   "happy",   "hard",    "harsh",   "hasty",    "heavy",    "hidden",  "high",
    "hollow",  "honest",  "hot",     "huge",    "humble",   "hungry",   "icy",     "idle",
    "inner",   "ivory",   "jolly",   "juicy",   "keen",     "kind",     "lame",    "large",
    "late",    "lazy",    "lean",    "left",    "light",    "limp",     "liquid",  "little",
    "lively",  "lone",    "long",    "loose",   "loud",     "lousy",    "low",     "loyal",
    "lucky",   "lunar",   "lush",    "mad",     "magic",    "major",    "marble",  "mellow",
    "merry",   "mild",    "minor",   "misty",   "modern",   "moist",    "moody",   "muddy",
    "murky",   "mute",    "narrow",  "nasty",   "neat",     "needy",    "nervous", "new",
    "nice",    "nimble",  "noble",   "noisy",   "normal",   "nosy",     "numb",    "odd",
    "oily",    "old",     "open",    "orange",  "ornate",   "outer",    "oval",    "pale",
    "patient", "perfect", "petty",   "plain",   "plump",    "polite",   "poor",    "posh",
    "pretty",  "prime",   "proud",   "pure",    "purple",   "quick",    "quiet",   "rapid",
    "rare",    "raw",     "ready",   "real",    "regal",    "rich",     "rigid",   "ripe",
    "rising",  "robust",  "rocky",   "rosy",    "rough",    "round",    "royal",   "rude",
    "rural",   "rusty",   "sad",     "safe",    "salty",    "sandy",    "scarce",  "shaggy",
    "shaky",   "sharp",   "shiny",   "short",   "shy",      "silent",   "silky",   "silly",
    "simple",  "sleek",   "sleepy",  "slim",    "slow",     "small",    "smart",   "smooth",
    "snowy",   "soft",    "solar",   "solid",   "sour",     "spare",    "spicy",   "spotty",
    "stale",   "steady",  "steep",   "sticky",  "stiff",    "stormy",   "strange", "strict",
    "strong",  "sturdy",  "subtle",  "sunny",   "super",    "sweet",    "swift",   "tall",
    "tame",    "tart",    "tender",  "tense",   "thick",    "thin",     "tidy",    "tiny",
    "tired",   "tough",   "tricky",  "true",    "ugly",     "unique",   "upset",   "urban",
    "vague",   "vast",    "velvet",  "vivid",   "warm",     "wary",     "weak",    "weary",
    "wet",     "white",   "whole",   "wide",    "wild",     "windy",    "wise",    "witty",
    "wooden",  "young",   "zany",    "zealous",
};

const char* const kNouns[] = {
    "acorn",    "actor",    "airport", "album",    "alley",    "anchor",  "angle",   "ankle",
    "apple",    "apron",    "arch",    "arena",    "army",     "arrow",   "artist",  "attic",
    "author",   "avenue",   "axe",     "badge",    "bagel",    "bakery",  "ball",    "banana",
    "band",     "banjo",    "bank",    "barn",     "barrel",   "basket",  "bath",    "beach",
    "bead",     "beak",     "bean",    "bear",     "beard",    "bed",     "bee",     "beetle",
    "bell",     "belt",     "bench",   "berry",    "bicycle",  "bird",    "biscuit", "blade",
    "blanket",  "block",    "boat",    "bonnet",   "book",     "boot",    "bottle",  "boulder",
    "bow",      "bowl",     "box",     "bracelet", "branch",   "bread",   "brick",   "bridge",
    "brook",    "broom",    "bucket",  "buffalo",  "bugle",    "bulb",    "bunny",   "butter",
    "button",   "cabin",    "cable",   "cactus",   "cake",     "camel",   "camera",  "canal",
    "candle",   "candy",    "canoe",   "canyon",   "cape",     "captain", "car",     "card",
    "carpet",   "carrot",   "cart",    "castle",   "cat",      "cave",    "cellar",  "chair",
    "chalk",    "cheese",   "cherry",  "chest",    "chicken",  "chimney", "circle",  "city",
    "clam",     "cliff",    "clock",   "cloud",    "clover",   "coat",    "cobra",   "coconut",
    "coin",     "collar",   "comet",   "cookie",   "copper",   "coral",   "corn",    "cottage",
    "cotton",   "couch",    "cow",     "crab",     "crane",    "crayon",  "creek",   "cricket",
    "crow",     "crown",    "cup",     "curtain",  "cushion",  "daisy",   "dancer",  "deer",
    "desert",   "desk",     "diamond", "dinner",   "doctor",   "dog",     "doll",    "dolphin",
    "donkey",   "door",     "dragon",  "drawer",   "dream",    "drum",    "duck",    "eagle",
    "ear",      "earth",    "egg",     "elbow",    "elephant", "elm",     "engine",  "falcon",
    "farm",     "feather",  "fence",   "fern",     "ferry",    "field",   "finch",   "fire",
    "fish",     "flag",     "flame",   "flower",   "flute",    "fog",     "forest",  "fork",
    "fossil",   "fountain", "fox",     "frog",     "fruit",    "garden",  "garlic",  "gate",
    "gem",      "ghost",    "giraffe", "glacier",  "glass",    "glove",   "goat",    "gold",
    "goose",    "grape",    "grass",   "guitar",   "gull",     "hammer",  "harbor",  "harp",
    "hat",      "hawk",     "hedge",   "helmet",   "hill",     "hippo",   "hive",    "honey",
    "hook",     "horn",     "horse",   "hotel",    "house",    "iceberg", "igloo",   "island",
    "ivy",      "jacket",   "jaguar",  "jam",      "jar",      "jelly",   "jewel",   "kettle",
    "key",      "kite",     "kitten",  "knife",    "knot",     "ladder",  "lake",    "lamp",
    "lantern",  "leaf",     "lemon",   "leopard",  "letter",   "library", "lily",    "lion",
    "lizard",   "llama",    "lobster", "lock",     "locket",   "lotus",   "magnet",  "mango",
    "map",      "maple",    "marble",  "market",   "meadow",   "melon",   "mirror",  "mitten",
    "monkey",   "moon",     "moose",   "moth",     "mountain", "mouse",   "mug",     "museum",
    "nail",     "needle",   "nest",    "net",      "nut",      "oak",     "oar",     "ocean",
    "octopus",  "olive",    "onion",   "orchard",  "otter",    "owl",     "oyster",  "paddle",
    "palace",   "panda",    "panther", "paper",    "parrot",   "path",    "peach",   "peak",
    "pear",     "pearl",    "pebble",  "pelican",  "pencil",   "penguin", "pepper",  "piano",
    "pickle",   "pie",      "pig",     "pillow",   "pine",     "pirate",  "planet",  "plate",
    "plum",     "pocket",   "pond",    "pony",     "poppy",    "potato",  "puddle",  "pumpkin",
    "puppy",    "quilt",    "rabbit",  "raccoon",  "radio",    "rainbow", "raven",   "reef",
    "ribbon",   "ring",     "river",   "road",     "robin",    "rocket",  "roof",    "rose",
    "ruby",     "sail",     "salmon",  "sand",     "saucer",   "scarf",   "school",  "seal",
    "shark",    "sheep",    "shell",   "ship",     "shoe",     "shovel",  "silver",  "sky",
    "sled",     "snail",    "snake",   "sock",     "sofa",     "spider",  "spoon",   "squid",
    "squirrel", "stable",   "star",    "statue",   "stone",    "stool",   "storm",   "stream",
    "sugar",    "sun",      "swan",    "sword",    "table",    "tiger",   "toast",   "tomato",
    "tower",    "tractor",  "train",   "tree",     "trumpet",  "tulip",   "turtle",  "umbrella",
    "valley",   "vase",     "violin",  "volcano",  "wagon",    "walnut",  "walrus",  "wave",
    "whale",    "wheel",    "whistle", "willow",   "window",   "wolf",    "wren",    "yacht",
    "zebra",
};

}  // namespace

absl::Span<const char* const> Adjectives() { return kAdjectives; }
absl::Span<const char* const> Nouns() { return kNouns; }

size_t NumWords() { return Adjectives().size() * Nouns().size(); }

std::string WordAt(size_t i) {
  return absl::StrCat(Adjectives()[i / Nouns().size()], "-", Nouns()[i % Nouns().size()]);
}

}  // namespace prolong::evaluator::tasks::internal
