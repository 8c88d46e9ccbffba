"""prolong_proto_library: one .proto in, C++ messages and gRPC stubs out.

Bazel's own proto rules need protobuf's sources, which an offline build does not have, so this
runs Debian's protoc and grpc_cpp_plugin in a genrule. The .proto files of a package are
imported relative to that package ("prolong/v1/x.proto" inside //proto), and the generated
headers are included the same way.
"""

_PROTOC = "/usr/bin/protoc"
_GRPC_PLUGIN = "/usr/bin/grpc_cpp_plugin"

def prolong_proto_library(name, src, deps = [], visibility = None):
    """Generates `name`, a cc_library with the messages and services of `src`.

    Args:
      name: the cc_library's name.
      src: one .proto file, relative to the package (its import path).
      deps: prolong_proto_library targets of the same package whose files `src` imports.
      visibility: of the cc_library.
    """
    if not src.endswith(".proto"):
        fail("src must be a .proto file: " + src)
    base = src[:-len(".proto")]
    headers = [base + ".pb.h", base + ".grpc.pb.h"]
    sources = [base + ".pb.cc", base + ".grpc.pb.cc"]
    package = native.package_name()

    # The transitive .proto files: protoc reads every imported file.
    native.filegroup(
        name = name + "_protos",
        srcs = [src] + [dep + "_protos" for dep in deps],
        visibility = ["//visibility:private"],
    )
    native.genrule(
        name = name + "_generate",
        srcs = [name + "_protos"],
        outs = headers + sources,
        cmd = " ".join([
            _PROTOC,
            "-I" + package,
            "-I/usr/include",
            "--plugin=protoc-gen-grpc=" + _GRPC_PLUGIN,
            "--cpp_out=$(GENDIR)/" + package,
            "--grpc_out=$(GENDIR)/" + package,
            package + "/" + src,
        ]),
        visibility = ["//visibility:private"],
    )
    native.cc_library(
        name = name,
        srcs = sources,
        hdrs = headers,
        strip_include_prefix = "/" + package,
        deps = deps + ["@system//:grpc", "@system//:protobuf"],
        visibility = visibility,
    )
