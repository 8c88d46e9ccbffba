"""Repository rule for LibTorch.

Default: Debian's libtorch-dev (CPU). Set PROLONG_LIBTORCH to the root of another LibTorch
distribution (a directory with include/ and lib/, e.g. a CUDA build or the `torch` folder of a
PyTorch wheel) to build against it; it must use the C++11 ABI, like every Debian library.
"""

_DEBIAN_API_INCLUDE = "/usr/include/torch/csrc/api/include"

def _fail_unless_exists(ctx, path, what):
    if not ctx.path(path).exists:
        fail("PROLONG_LIBTORCH: %s not found at %s" % (what, path))

def _libtorch_repository_impl(ctx):
    root = ctx.os.environ.get("PROLONG_LIBTORCH", "").rstrip("/")
    if not root:
        ctx.symlink(_DEBIAN_API_INCLUDE, "api_include")
        hdr_globs = ["api_include/**"]
        includes = ["api_include"]
        search = []
    else:
        _fail_unless_exists(ctx, root + "/include/torch", "headers (include/torch)")
        _fail_unless_exists(ctx, root + "/lib/libtorch.so", "library (lib/libtorch.so)")
        config = ctx.path(root + "/share/cmake/Torch/TorchConfig.cmake")
        if config.exists and "_GLIBCXX_USE_CXX11_ABI=0" in ctx.read(config):
            fail("PROLONG_LIBTORCH: %s is built with the pre-C++11 ABI; " % root +
                 "use a cxx11-ABI LibTorch (the system libraries use that ABI)")
        ctx.symlink(root + "/include", "include")
        ctx.symlink(root + "/include/torch/csrc/api/include", "api_include")
        hdr_globs = ["include/**", "api_include/**"]
        includes = ["include", "api_include"]
        search = ["-L%s/lib" % root, "-Wl,-rpath,%s/lib" % root]
    has_cuda = bool(root) and ctx.path(root + "/lib/libtorch_cuda.so").exists
    cuda_message = "--config=cuda needs PROLONG_LIBTORCH set to a LibTorch built with CUDA" + (
        " (%s has no lib/libtorch_cuda.so)" % root if root else " (it is unset, and the Debian LibTorch is CPU-only)")

    ctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

# Under --config=cuda without a CUDA LibTorch, fail with a message rather than at link time.
genrule(
    name = "cuda_libtorch_missing",
    outs = ["cuda_libtorch_missing.h"],
    cmd = "echo '{cuda_message}' >&2; exit 1",
)

cc_library(
    name = "torch",
    hdrs = glob({hdr_globs}) + select({{
        "@//bazel:cuda_enabled": [] if {has_cuda} else [":cuda_libtorch_missing.h"],
        "//conditions:default": [],
    }}),
    includes = {includes},
    # A CUDA LibTorch's headers (c10/cuda, ATen/cuda) include the CUDA toolkit's.
    deps = select({{
        "@//bazel:cuda_enabled": ["@cuda//:cudart"],
        "//conditions:default": [],
    }}),
    # --no-as-needed: libtorch_cuda registers its kernels from static initialisers only.
    linkopts = {search} + ["-Wl,--push-state,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10"] + select({{
        "@//bazel:cuda_enabled": ["-ltorch_cuda", "-lc10_cuda"],
        "//conditions:default": [],
    }}) + ["-Wl,--pop-state"],
)
""".format(hdr_globs = hdr_globs, includes = includes, search = search, has_cuda = has_cuda,
           cuda_message = cuda_message))

libtorch_repository = repository_rule(
    implementation = _libtorch_repository_impl,
    environ = ["PROLONG_LIBTORCH"],
    local = True,
)
