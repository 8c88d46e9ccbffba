"""Repository rule for the CUDA runtime and NCCL, used only under --config=cuda.

CUDA_HOME (default /usr/local/cuda) is the toolkit root; NCCL_HOME (default CUDA_HOME) holds
include/nccl.h and lib64/ or lib/libnccl.so. When they are missing, the targets exist but fail
with a message naming the path, so the default (CPU) build never needs CUDA.
"""

def _lib_dir(ctx, root, lib):
    for sub in ["lib64", "lib", "lib/x86_64-linux-gnu"]:
        if ctx.path("%s/%s/%s" % (root, sub, lib)).exists:
            return "%s/%s" % (root, sub)
    return None

def _missing(name, message):
    return """
genrule(
    name = "{name}_missing",
    outs = ["{name}_missing.h"],
    cmd = "echo '{message}' >&2; exit 1",
)

cc_library(
    name = "{name}",
    hdrs = [":{name}_missing.h"],
)
""".format(name = name, message = message)

def _library(name, include_link, lib_dir, lib, headers, deps = []):
    return """
cc_library(
    name = "{name}",
    hdrs = glob({headers}),
    includes = ["{include_link}"],
    linkopts = ["-L{lib_dir}", "-Wl,-rpath,{lib_dir}", "-l{lib}"],
    deps = {deps},
)
""".format(name = name, include_link = include_link, lib_dir = lib_dir, lib = lib,
           headers = headers, deps = deps)

def _cuda_repository_impl(ctx):
    cuda_home = ctx.os.environ.get("CUDA_HOME", "/usr/local/cuda").rstrip("/")
    nccl_home = ctx.os.environ.get("NCCL_HOME", cuda_home).rstrip("/")
    build = ['package(default_visibility = ["//visibility:public"])']

    cudart_dir = _lib_dir(ctx, cuda_home, "libcudart.so")
    if ctx.path(cuda_home + "/include/cuda_runtime_api.h").exists and cudart_dir:
        ctx.symlink(cuda_home + "/include", "cuda_include")
        build.append(_library("cudart", "cuda_include", cudart_dir, "cudart",
                              ["cuda_include/**"]))
    else:
        build.append(_missing("cudart", "CUDA runtime not found under CUDA_HOME=%s" % cuda_home))

    nccl_dir = _lib_dir(ctx, nccl_home, "libnccl.so")
    if ctx.path(nccl_home + "/include/nccl.h").exists and nccl_dir:
        ctx.symlink(nccl_home + "/include", "nccl_include")
        build.append(_library("nccl", "nccl_include", nccl_dir, "nccl", ["nccl_include/nccl*.h"],
                              deps = [":cudart"]))
    else:
        build.append(_missing("nccl", "NCCL not found under NCCL_HOME=%s" % nccl_home))

    ctx.file("BUILD.bazel", "\n".join(build))

cuda_repository = repository_rule(
    implementation = _cuda_repository_impl,
    environ = ["CUDA_HOME", "NCCL_HOME"],
    local = True,
)
