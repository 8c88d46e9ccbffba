"""prolong_fuzzer: one libFuzzer target and the test that replays its corpus."""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

def prolong_fuzzer(name, srcs, deps = [], data = [], size = "small"):
    """Declares NAME and NAME_replay for the fuzz function in srcs.

    NAME is the libFuzzer binary under --config=fuzz (fuzz/run.sh builds and runs it), and a
    replayer of the inputs named on its command line otherwise. NAME_replay, a test of the
    default build, runs every input of fuzz/corpus/NAME through the function, so every input
    that ever crashed it is checked on every CI run.
    """
    cc_library(
        name = name + "_function",
        srcs = srcs,
        deps = deps,
        alwayslink = True,
        testonly = True,
    )
    cc_binary(
        name = name,
        deps = [":" + name + "_function"] + select({
            ":libfuzzer": [],
            "//conditions:default": [":replay_main"],
        }),
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = data,
        testonly = True,
    )
    cc_test(
        name = name + "_replay",
        size = size,
        deps = [":" + name + "_function", ":replay_main"],
        args = ["fuzz/corpus/" + name],
        data = native.glob(["corpus/" + name + "/**"]) + data,
    )
