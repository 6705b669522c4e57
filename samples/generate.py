#!/usr/bin/env python3
"""Sample inference logs of an alt-text captioning service, for trying driftd
without Kafka. Deterministic (fixed seed); stdlib only.

    python3 samples/generate.py      # rewrites samples/reference.ndjson, samples/current.ndjson

The current file has drift planted on purpose: darker, larger images, more of
them from scanners, lower model confidence. `is_photo` and `height` are unchanged.
"""
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SUBJECTS = ["a man", "a woman", "a dog", "two children", "a cat", "a cyclist", "a group of people"]
ACTIONS = ["riding a bike", "sitting on a bench", "walking", "playing with a ball", "reading a book"]
PLACES = ["down a street", "in a park", "on a beach", "next to a building", "in a kitchen"]


def events(n, start, seed, drift):
    rng = random.Random(seed)
    t = start
    for i in range(n):
        t += timedelta(milliseconds=rng.randint(50, 400))
        source = rng.choices(
            ["mobile", "web", "scanner"], weights=[0.3, 0.3, 0.4] if drift else [0.55, 0.35, 0.10]
        )[0]
        brightness = min(1.0, max(0.0, rng.gauss(0.38 if drift else 0.5, 0.15)))
        width = rng.choice([640, 800, 1024, 1280, 2048, 4096] if drift else [640, 800, 1024, 1280])
        caption = f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}"
        failed = rng.random() < (0.01 if not drift else 0.03)
        yield {
            "event_id": f"{seed:02d}-{i:06d}",
            "timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
            "model": "alt-text-captioner",
            "model_version": "3.2.0",
            "features": {
                "brightness": round(brightness, 4),
                "width": width,
                "height": rng.choice([480, 600, 768, 960]),
                "source": source,
                "is_photo": rng.random() < 0.8,
            },
            "prediction": None if failed else {
                "caption": caption,
                "confidence": round(min(1.0, max(0.0, rng.gauss(0.7 if drift else 0.8, 0.08))), 4),
            },
            "latency_ms": round(rng.lognormvariate(4.9, 0.3), 1),
            "error": "upstream timeout" if failed else None,
        }


def write(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")


here = Path(__file__).parent
t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
write(here / "reference.ndjson", events(2000, t0, 1, drift=False))
write(here / "current.ndjson", events(800, t0 + timedelta(days=20), 2, drift=True))
print("wrote samples/reference.ndjson (2000 events), samples/current.ndjson (800 events)")
