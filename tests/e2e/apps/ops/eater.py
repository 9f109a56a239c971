"""A worker that records each start in /data/eater-starts, then waits; once /data/eat
exists it allocates (and touches) memory until its memory limit OOM-kills it."""

import os
import time

with open("/data/eater-starts", "a") as f:
    f.write(f"{os.environ.get('PAAS_RELEASE', '-')} {time.time()}\n")
print("eater started", flush=True)
hoard = []
while True:
    if os.path.exists("/data/eat"):
        hoard.append(b"\1" * (8 << 20))  # 8 MiB of real pages
        print(f"eating: {len(hoard) * 8} MiB", flush=True)
    time.sleep(0.05)
