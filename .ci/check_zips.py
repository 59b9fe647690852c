#!/usr/bin/env python3
"""Checks what `sam build` left in .aws-sam/build: each function has an executable `bootstrap`
for the architecture asked, and the zip Lambda would receive stays under 15 MB.

usage: check_zips.py BUILD_DIR [x86_64|arm64]
"""
import io
import os
import sys
import zipfile

LIMIT = 15 * 1024 * 1024
MACHINES = {"x86_64": 0x3E, "arm64": 0xB7}
FUNCTIONS = ["TriggerFunction", "IngestFunction", "ValidateFunction", "MaskFunction", "LoadFunction", "CheckFunction", "ExtractFunction"]


def zipped_size(folder):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, _, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                archive.write(path, os.path.relpath(path, folder))
    return buffer.tell()


def elf_machine(path):
    with open(path, "rb") as file:
        header = file.read(20)
    if header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build"
    architecture = sys.argv[2] if len(sys.argv) > 2 else "x86_64"
    problems = []
    for function in FUNCTIONS:
        folder = os.path.join(build, function)
        bootstrap = os.path.join(folder, "bootstrap")
        if not os.path.isfile(bootstrap):
            problems.append(f"{function}: no bootstrap in {folder}")
            continue
        if not os.access(bootstrap, os.X_OK):
            problems.append(f"{function}: {bootstrap} is not executable")
        machine = elf_machine(bootstrap)
        if machine != MACHINES[architecture]:
            problems.append(f"{function}: bootstrap is not a Linux {architecture} executable (ELF machine {machine})")
        size = zipped_size(folder)
        unzipped = os.path.getsize(bootstrap)
        print(f"{function:18} bootstrap {unzipped / 1e6:6.1f} MB  zip {size / 1e6:6.1f} MB")
        if size > LIMIT:
            problems.append(f"{function}: zip is {size / 1e6:.1f} MB, over the 15 MB budget")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
