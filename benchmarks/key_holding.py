"""Does the answer hold the call's key? Minor calls that end on their 5th (the case a decaying
histogram heard in the key of the 5th: an A-minor call ending on a held E answered in E major), and
calls in all 24 keys, answered by a shipped style through the live path (``deepjam answer``'s
``answer_call``: the live Session on a fast clock, the live defaults: temperature 0.5, answer
after the phrase's end), with the call's key known by construction.

Prints, per set of calls: the share answered in the call's key (the frame the answer was played
in, ``Decider.played_key``), the share of answer notes in the call's key (its scale; a minor key
counts its raised 6th and 7th, as ``exports.tonality.scale_mask`` and ``deepjam eval`` do), and
the share of answers with a note outside the call's key; and, without the network, how often the
key judged from the call window alone is right, by ``estimate_call_key`` and by the decaying
pitch-class histogram it replaced.

    python3 benchmarks/key_holding.py [--model live_agent/models/default.onnx] [--calls-per-key 10]
        [--seed 0]

Goals: minor calls ending on the 5th answered in the call's key >= 95%; notes in the call's key
>= 97% over all 12 keys. Measured (shipped default.onnx, 10 calls a key, seed 0, 2026-12-08):
minor calls ending on the 5th answered in the call's key 95.8% (the decaying histogram judged
14.2% of them right); notes in the call's key 99.6% of those answers, 99.7% over all 24 keys;
major calls 96.7%, other minor calls 95.8% in key. The misses are calls a listener could hear
either way (a minor call with no 6th read as the minor key a fifth up, or as its relative major).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exports.midi import key_name  # noqa: E402
from exports.spec import PITCH_CLASSES  # noqa: E402
from exports.tonality import estimate_call_key, estimate_key, scale_mask  # noqa: E402

NATURAL_MINOR = (0, 2, 3, 5, 7, 8, 10)
MAJOR = (0, 2, 4, 5, 7, 9, 11)


class Call(NamedTuple):
    tonic: int
    minor: bool
    notes: list[tuple[int, int, int]]
    """(start_step, duration_steps, pitch), from step 0."""


def make_call(rng: np.random.Generator, tonic: int, minor: bool, end_degree: int | None) -> Call:
    """A call in a key as a player phrases one, near A3..A5: 3..6 beats, each opening on a note
    of the tonic chord (the tonic most often; the tonic and the key's third both somewhere in
    the call, or the mode could not be told), the rest of the beat stepping along the scale
    towards the next beat's note (16ths, 8ths, a dotted 8th and a 16th, or one quarter), then a
    last note on ``end_degree`` (semitones above the tonic; None: the tonic, third or fifth) held
    8..16 steps. A minor call's 7th is raised as a leading tone into the tonic one time in three
    (harmonic minor)."""
    scale = NATURAL_MINOR if minor else MAJOR
    low = 57 + (tonic - 9) % PITCH_CLASSES  # the tonic between A3 and G#4
    degrees = [low + 12 * octave + d for octave in (-1, 0, 1, 2) for d in scale]
    third = 3 if minor else 4
    chord = [0, third, 7, 12]
    n_beats = int(rng.integers(3, 7))
    anchors = [int(rng.choice(chord, p=[0.4, 0.25, 0.25, 0.1])) for _ in range(n_beats)]
    if 0 not in anchors and 12 not in anchors:
        anchors[int(rng.integers(n_beats))] = 0
    if third not in anchors:
        # On a beat that does not hold the call's only tonic.
        tonics = [i for i, a in enumerate(anchors) if a in (0, 12)]
        free = [i for i in range(n_beats) if tonics != [i]]
        anchors[int(rng.choice(free))] = third
    if end_degree is None:
        end_degree = int(rng.choice([0, third, 7]))
    targets = [degrees.index(low + a) for a in anchors] + [degrees.index(low + end_degree)]
    notes: list[tuple[int, int, int]] = []
    start = 0
    for beat in range(n_beats):
        rhythm = [[4], [2, 2], [2, 1, 1], [1, 1, 1, 1], [3, 1]][int(rng.integers(5))]
        index, goal = targets[beat], targets[beat + 1]
        for length in rhythm:
            notes.append((start, length, degrees[index]))
            start += length
            # Step towards the next beat's note; on it already, a neighbour note.
            index += int(np.sign(goal - index)) or int(rng.choice([-1, 1]))
    notes.append((start, int(rng.integers(8, 17)), degrees[targets[-1]]))
    if minor:
        for i in range(1, len(notes)):
            # The raised 7th, as a leading tone into the tonic, one time in three.
            s, d, p = notes[i - 1]
            leading = notes[i][2] % PITCH_CLASSES == tonic and (p - tonic) % PITCH_CLASSES == 10
            if leading and rng.random() < 1 / 3:
                notes[i - 1] = (s, d, p + 1)
    return Call(tonic, minor, notes)


def in_key(pitches: list[int], tonic: int, minor: bool) -> np.ndarray:
    mask = scale_mask(minor)
    return np.array([mask[(p - tonic) % PITCH_CLASSES] for p in pitches], dtype=bool)


def window_of(call: Call, window_steps: int, rest_steps: int = 8) -> tuple[np.ndarray, ...]:
    """(onset, chroma, top) of the call at the end of a window, then ``rest_steps`` of silence."""
    end = max(s + d for s, d, _ in call.notes)
    offset = window_steps - rest_steps - end
    top = np.full(window_steps, -1)
    onset = np.zeros(window_steps, dtype=bool)
    for start, length, pitch in call.notes:
        top[offset + start : offset + start + length] = pitch
        onset[offset + start] = True
    chroma = np.zeros((window_steps, PITCH_CLASSES), dtype=bool)
    chroma[top >= 0, top[top >= 0] % PITCH_CLASSES] = True
    return onset, chroma, top


class Tally:
    def __init__(self) -> None:
        self.calls = self.keys_held = self.clean = self.notes = self.notes_in_key = 0
        self.estimate_right = self.decaying_right = 0

    def row(self, name: str) -> str:
        n = max(1, self.calls)
        return (
            f"{name:34s} {self.calls:5d} {self.keys_held / n:8.1%} "
            f"{self.notes_in_key / max(1, self.notes):8.1%} {1 - self.clean / n:9.1%} "
            f"{self.estimate_right / n:9.1%} {self.decaying_right / n:9.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "live_agent/models/default.onnx"))
    parser.add_argument("--calls-per-key", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from exports.model_file import load_model
    from live_agent.cli.answer_command import answer_call
    from live_agent.options import JamOptions

    policy = load_model(args.model)
    spec = policy.spec
    rng = np.random.default_rng(args.seed)
    sets: dict[str, list[tuple[int, bool, int | None]]] = {
        "minor calls ending on the 5th": [(t, True, 7) for t in range(PITCH_CLASSES)],
        "major calls (12 keys)": [(t, False, None) for t in range(PITCH_CLASSES)],
        "minor calls (12 keys)": [(t, True, None) for t in range(PITCH_CLASSES)],
    }
    print(
        f"{Path(args.model).name}, live defaults (temperature 0.5), "
        f"{args.calls_per_key} calls a key, seed {args.seed}"
    )
    print(
        f"{'calls':34s} {'n':>5s} {'in key':>8s} {'notes in':>8s} {'any note':>9s} "
        f"{'judged':>9s} {'decaying':>9s}"
    )
    print(
        f"{'':34s} {'':>5s} {'(frame)':>8s} {'key':>8s} {'off key':>9s} {'right':>9s} {'hist.':>9s}"
    )
    everything = Tally()
    for name, keys in sets.items():
        tally = Tally()
        missed: list[str] = []
        for tonic, minor, end in keys:
            for _ in range(args.calls_per_key):
                call = make_call(rng, tonic, minor, end)
                options = JamOptions(seed=int(rng.integers(1 << 31)), clock="internal")
                answered = answer_call(policy, options, call.notes)
                pitches = [p for _, _, p in answered.answer]
                good = in_key(pitches, tonic, minor)
                onset, chroma, top = window_of(call, spec.call_window_steps)
                judged = estimate_call_key(onset, chroma, top, spec.key_decay_per_step)[:2]
                weights = spec.key_decay_per_step ** np.arange(len(top) - 1, -1, -1.0)
                decaying = estimate_key(chroma.T.astype(float) @ weights)
                for t in (tally, everything):
                    t.calls += 1
                    t.keys_held += answered.session.decider.played_key == (tonic, minor)
                    t.notes += len(pitches)
                    t.notes_in_key += int(good.sum())
                    t.clean += bool(good.all())
                    t.estimate_right += (int(judged[0]), bool(judged[1])) == (tonic, minor)
                    t.decaying_right += (int(decaying[0]), bool(decaying[1])) == (tonic, minor)
                played = answered.session.decider.played_key
                if played != (tonic, minor):
                    missed.append(f"{key_name(tonic, minor)} as {key_name(*played)}")
        print(tally.row(name))
        if missed:
            print(f"{'':34s} answered off the call's key: {', '.join(missed)}")
    print(everything.row("all calls (24 keys)"))


if __name__ == "__main__":
    main()
