#!/usr/bin/env python3
"""Writes the seed corpora of the *_rpc fuzz targets from their text-format requests.

  fuzz/rpc_seeds/SERVICE/N-NAME.textproto  ->  fuzz/corpus/SERVICE_rpc/N-NAME

N is the method's index in the service (proto order), the input's first byte. A file for a
client-streaming method holds several requests separated by lines "---", each sent as two
bytes of length (little endian) and the message (fuzz/rpc_call.h).
"""
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
RPC = re.compile(r"^\s*rpc (\w+)\((stream )?([\w.]+)\)", re.M)


def encode(proto: str, message_type: str, text: str) -> bytes:
    return subprocess.run(
        ["protoc", "-Iproto", f"--encode=prolong.v1.{message_type}", proto],
        input=text.encode(), capture_output=True, check=True, cwd=ROOT).stdout


def main() -> None:
    for service_dir in sorted((ROOT / "fuzz/rpc_seeds").iterdir()):
        proto = f"proto/prolong/v1/{service_dir.name}.proto"
        methods = RPC.findall((ROOT / proto).read_text())
        out = ROOT / f"fuzz/corpus/{service_dir.name}_rpc"
        out.mkdir(parents=True, exist_ok=True)
        for seed in sorted(service_dir.glob("*.textproto")):
            index = int(seed.name.split("-")[0])
            method, streaming, message_type = methods[index]
            data = bytes([index])
            if streaming:
                for part in re.split(r"\n---\n", seed.read_text()):
                    message = encode(proto, message_type, part)
                    data += len(message).to_bytes(2, "little") + message
            else:
                data += encode(proto, message_type, seed.read_text())
            (out / seed.stem).write_bytes(data)
            print(f"{out.relative_to(ROOT) / seed.stem}: {method}")


if __name__ == "__main__":
    main()
