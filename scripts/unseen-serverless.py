#!/usr/bin/env python3
# Random serverless scenarios nobody tuned on, to check lifecycle policies beyond the examples
# (docs/serverless.md): 8-12 cameras, a "day" of 600-900 s, 1-3 busy spells of 30-150 s per
# camera per day, random arrivals 0-6 an hour of 20-60 s, memory for half the streams
# (15 MiB each).
# Usage: python3 scripts/unseen-serverless.py OUT_DIR SEED...   then: tandem compare FILE
import random
import sys

from drawn import common


def scenario(seed):
    r = random.Random(seed)
    n=r.randint(8,12); period=r.choice([600.0,750.0,900.0]); windows=12; ws=300.0
    out=f'''name = "unseen-serverless-{seed}"
compare = [
  "fair:retrain-config=head-d0.5-e5:profile=false:lifecycle=always-warm",
  "fair:retrain-config=head-d0.5-e5:profile=false:lifecycle=keep-alive",
  "fair:retrain-config=head-d0.5-e5:profile=false:lifecycle=histogram",
  "fair:retrain-config=head-d0.5-e5:profile=false:lifecycle=scale-to-zero",
]
windows = {windows}
window_seconds = {ws}
''' + common("1.75", seed, 3, f'''
[lifecycle]
policy = {{ name = "keep-alive" }}
memory_budget_mib = {15.0*(n//2)}
''')
    for c in range(n):
        spells=[]
        for _ in range(r.randint(1,3)):
            a=r.uniform(0,period-150); spells.append([round(a,1), round(a+r.uniform(30,150),1)])
        spells.sort()
        merged=[]
        for s in spells:
            if merged and s[0]<=merged[-1][1]: merged[-1][1]=max(merged[-1][1],s[1])
            else: merged.append(s)
        busy=", ".join(f"[{a}, {b}]" for a,b in merged)
        per_hour=round(r.uniform(0,6),1)
        arr=f", arrivals = {{ per_hour = {per_hour}, seconds = {round(r.uniform(20,60),1)} }}" if per_hour>0.5 else ""
        out+=f'''
[[cameras]]
name = "cam{c}"
source = "fashion-mnist"
frame_rate = {r.choice([5,10,15])}
objects_per_frame = {r.randint(2,4)}
train_samples = 400
activity = {{ cycle = {{ period = {period}, busy = [{busy}] }}{arr} }}
'''
        if r.random()<0.5:
            out+=f'''
[[cameras.drift]]
window = {r.randint(1,windows-1)}
brightness = {round(r.uniform(0.4,0.9),2)}
noise = {round(r.uniform(0,0.15),2)}
'''
    return out, n, period


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python3 scripts/unseen-serverless.py OUT_DIR SEED...")
    for seed in map(int, sys.argv[2:]):
        out, n, period = scenario(seed)
        path = f"{sys.argv[1]}/unseen-serverless-{seed}.toml"
        open(path, "w").write(out)
        print(path, f"({n} cameras, a day of {period:.0f} s)")
