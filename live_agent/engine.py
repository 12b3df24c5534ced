"""The live session: listener + modes + decider + ledger on one scheduler thread.

How to drive it (``deepjam jam`` does this with rtmidi; ``deepjam answer`` with a FakeClock)::

    from live_agent.engine import Session
    from live_agent.clock import RealClock
    from live_agent.options import JamOptions

    inbox = queue.SimpleQueue()          # the rtmidi callback puts InputEvent(perf_counter_ns(), bytes)
    session = Session(policy, JamOptions(mode="duet", bpm=100), sink, RealClock(), inbox)
    session.warm_up()                    # first decisions are slow; sizes the decision margin
    stop = threading.Event()
    thread = threading.Thread(target=session.run, args=(stop,), name="deepjam-scheduler")
    thread.start()
    ...                                  # SIGTERM / Ctrl-C: stop.set(); inbox.put(None)
    thread.join(timeout=2.0)

* ``run(stop, until_step=None)`` returns when ``stop`` is set, ``None`` is read from the inbox, or
  ``until_step`` steps have been played; before returning (in ``finally``) it closes the output
  gate of ``session.notes`` (the one ``NoteLedger``): a note-off for each open note (agent and
  MIDI thru), then CC 123 and CC 120 once on each channel used. It returns ``session.stats``.
  ``session.close()`` does the same; a signal handler may close the gate first
  (``session.notes.close_gate()``), and then nothing is sent twice.
* ``swap_policy(policy)`` may be called from any thread but the scheduler's (a file watcher,
  ``ModelSlots``): it makes the new model ready there (``agent.ReadyPolicy.prepare``: warmed
  session, first state encoded), and the scheduler adopts it before its next decision at the
  cost of a few references; the agent's sounding note is released at that step's boundary, no
  step is missed or late. The new model's spec may differ (the history is kept).
* ``stats`` (``SessionStats``): steps, decisions, late and skipped steps, dropped input by reason,
  ignored input by kind, notes sent, model swaps, answers, held-note timeouts, and the timing
  (``stats.timing``: decision and send lateness percentiles, the current decision margin).
* ``program_handler``: set it to a callable(program) to receive program changes (use
  ``controls.ModelSlots(...).program_change``); without one they are counted as ignored.

The sink is only ever called from the thread running ``run`` (and from ``close``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from exports.errors import ConfigError
from exports.midi import ALL_NOTES_OFF, ALL_SOUND_OFF, PEDAL_DOWN_MIN, SUSTAIN_PEDAL
from exports.spec import PITCH_CLASSES
from exports.turns import answer_steps
from live_agent.agent import SILENT_STEP, Decider, ReadyPolicy, StepKey
from live_agent.clock import InternalGrid, PlayerGrid, StepGrid
from live_agent.controls import MODE_MESSAGES, ControlMap, load_controls
from live_agent.dynamics import VelocityFollower
from live_agent.ledger import NoteLedger
from live_agent.listener import (
    Kind,
    Message,
    PlayerListener,
)
from live_agent.modes import Mode, make_mode
from live_agent.options import JamOptions
from live_agent.protocols import Clock, Inbox, InputEvent, NoteSink, Policy
from live_agent.recording import PLAYER, Recorder, RecordingSink
from live_agent.scheduler import (
    START_LEAD_NS,
    ClockWatch,
    InputPump,
    MidiClockFollower,
    TimingStats,
    run_internal,
    run_midi_clock,
)
from live_agent.tempo import TempoEstimate

WARM_UP_DECISIONS = 64
DEFAULT_CONTROL_CHANNEL = 0
"""Channel 1: where live controls are heard when neither the controls file nor
``--input-channel`` names one."""
CLOCK_KINDS = frozenset((Kind.CLOCK, Kind.START, Kind.CONTINUE, Kind.STOP, Kind.SONG_POSITION))


@dataclass
class SessionStats:
    """Counters of a session; read them from any thread (values may be a step old)."""

    decisions: int = 0
    model_swaps: int = 0
    notes_sent: int = 0
    answers: int = 0
    interruptions: int = 0
    held_timeouts: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    """Malformed input by reason (see listener.classify)."""
    ignored: Counter[str] = field(default_factory=Counter)
    """Valid input that was not used, by kind (other channel, pressure, unmapped CC ...)."""
    timing: TimingStats = field(default_factory=TimingStats)

    @property
    def late_steps(self) -> int:
        return self.timing.late_steps

    @property
    def steps(self) -> int:
        return self.timing.steps

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """One line for the end of a session (times in microseconds)."""
        t = self.timing
        return (
            f"steps {t.steps}, late {t.late_steps}, skipped {t.skipped_steps}, decisions "
            f"{self.decisions} (p50 {t.decision_p(50) / 1e3:.0f} us, p99 {t.decision_p(99) / 1e3:.0f} us), "
            f"margin {t.margin_ns / 1e3:.0f} us, sent late by p50 {t.send_late_p(50) / 1e3:.0f} us "
            f"p99 {t.send_late_p(99) / 1e3:.0f} us, notes {self.notes_sent}, "
            f"dropped {sum(self.dropped.values())} {dict(self.dropped)}, swaps {self.model_swaps}"
        )


class Session:
    """One live session. Construct, optionally ``warm_up()``, then ``run(stop)`` on one thread."""

    def __init__(
        self,
        policy: Policy,
        options: JamOptions,
        sink: NoteSink,
        clock: Clock,
        inbox: Inbox,
        *,
        controls: ControlMap | None = None,
        recorder: Recorder | None = None,
        grid: StepGrid | None = None,
    ) -> None:
        """``grid``: where the steps fall when the grid comes from outside the session (``deepjam
        jam --clock link`` hands in a started ``link_clock.LinkGrid``); needed with
        ``--clock link``, not used with the other clocks."""
        if options.clock == "link" and grid is None:
            raise ConfigError("--clock link needs the Link session's grid: Session(grid=LinkGrid)")
        self.options = options
        self.clock = clock
        self.inbox = inbox
        self.recorder = recorder
        if recorder is None and options.record is not None:
            self.recorder = Recorder(options.bpm)
        out: NoteSink = RecordingSink(sink, self.recorder, clock) if self.recorder else sink
        self.notes = NoteLedger(out, clock)
        """The one ledger of open notes (the agent's and MIDI thru's), with the output gate."""
        self.notes.panic_channels = (options.channel,)
        self.controls = controls if controls is not None else load_controls(options.controls)
        self.stats = SessionStats()
        self.rng = np.random.default_rng(options.seed)
        self.decider = Decider(policy, self.rng, fixed_key=options.fixed_key)
        self.listener = PlayerListener(options.held_timeout_steps)
        self.dynamics = VelocityFollower(options.velocity, self.decider.spec.steps_per_bar)
        self.grid: StepGrid | None = grid
        """Where the steps fall (set by ``run``, or given); ``tempo`` is its estimate of the
        player."""
        self._given_grid = grid
        self._clock_watch = ClockWatch()
        """``--clock auto``: whether a MIDI clock in the input really runs (see ClockWatch)."""
        self._midi_clock_heard = False
        """``--clock auto``: True while the grid follows MIDI clock (the live view reads it)."""
        self.log: Callable[[str], None] | None = None
        """Where tempo changes are reported (``deepjam jam`` prints them); None: nowhere."""
        self._logged_bpm = 0.0
        self._logged_locked = False
        self._held_steps = 0
        """Steps the agent's sounding note has sounded so far (0 when silent)."""
        self._closing_step = 0
        """Grid step of the step being played (closed at the next decision)."""
        self.mode: Mode = self._make_mode(options.mode)
        self.program_handler: Callable[[int], object] | None = None
        self.temperature = options.temperature
        self.density = options.density
        self.register_shift = options.register_shift
        self._next_policy: ReadyPolicy | None = None
        self._swap_lock = threading.Lock()
        self._steps_closed = 0  # steps the session has closed (folded into both parts)
        """Steps closed so far (monotonic; the grid position may restart with MIDI Start)."""
        self._pending_action: int | None = None
        self._release_at_send = False
        self._sounding: int | None = None
        """Absolute pitch the agent holds (register shift included), None when silent."""
        self._agent_onset = False
        self._key_folded = False
        self._mode_request: tuple[str, int, int] | None = None
        """(mode asked for by the mode CC, steps closed when it was first asked, messages that
        asked for it in a row)."""
        """The step closed last is in the key estimate already (see ``_close_step``)."""
        self._closed = False
        self._step_start_ns: int | None = None
        self._decided_unsent = False
        """A step was decided and not sent yet (it closed the step before it already)."""

    # --- public API -------------------------------------------------------------------------

    def swap_policy(self, policy: Policy) -> None:
        """Use ``policy`` from the next decision on (thread-safe). Makes it ready on the calling
        thread (never call it from the scheduler's): the scheduler only swaps references."""
        ready = ReadyPolicy.prepare(policy)
        with self._swap_lock:
            self._next_policy = ready

    def warm_up(self, decisions: int = WARM_UP_DECISIONS) -> None:
        """Run full decisions on the empty state (no note sent, no randomness used) and size the
        decision margin from them."""
        timing = self.stats.timing
        for _ in range(decisions):
            started = time.perf_counter_ns()
            state = self.decider.state(0, False, 0.0)
            self.decider.policy.q_values(state)
            timing.add_decision(time.perf_counter_ns() - started)
        step_ns = self.options.step_ns
        timing.update_margin(step_ns)
        timing.decisions = 0

    def run(
        self, stop: threading.Event, until_step: int | None = None, start_ns: int | None = None
    ) -> SessionStats:
        """Play until ``stop`` is set, the inbox yields None, or ``until_step`` steps; then close
        every note. ``start_ns``: time of step 0 (default: 50 ms from now). Returns ``stats``."""
        pump = InputPump(self.inbox, self.clock, stop, self.handle, self.stats.dropped)
        o = self.options
        timing = self.stats.timing
        try:
            if o.clock == "midi":
                run_midi_clock(self, pump, self.clock, MidiClockFollower(), timing)
                return self.stats
            t0 = self.clock.now_ns() + START_LEAD_NS if start_ns is None else start_ns
            internal = InternalGrid(o.bpm, t0, self.decider.spec.steps_per_beat)
            if self._given_grid is not None:
                self.grid = self._given_grid
            else:
                self.grid = internal if o.clock == "internal" else PlayerGrid(internal)
            watch = self._clock_watch
            auto = o.clock == "auto" and self._given_grid is None
            while True:
                left = (
                    None if until_step is None else until_step - timing.steps - timing.skipped_steps
                )
                handed_over = run_internal(
                    self,
                    pump,
                    self.clock,
                    o.step_ns,
                    timing,
                    until_step=left,
                    start_ns=t0,
                    grid=self.grid,
                    handover=(lambda: watch.takeover is not None) if auto else None,
                )
                if not handed_over or self._closed:
                    break
                # auto: a MIDI clock runs (Start, or a steady run of ticks): it has the grid
                # from the tick just heard, numbered on the clock's own position.
                beat_ns = int(self.grid.step_ns * self.decider.spec.steps_per_beat)
                self._midi_clock_heard = True
                if self.log is not None:
                    self.log("MIDI clock running: following it")
                back = run_midi_clock(
                    self,
                    pump,
                    self.clock,
                    watch.follower,
                    timing,
                    takeover=watch.takeover,
                    hand_back_ns=beat_ns,
                )
                self._midi_clock_heard = False
                watch.reset()
                if back is None or self._closed:
                    break
                # The clock stopped: the grid goes on from its last 16th at its tempo (the
                # player's beat once it is locked), numbered on; the phrase heard goes on too.
                if isinstance(self.grid, PlayerGrid):
                    self.grid.continue_from(back.step, back.boundary_ns, back.step_ns)
                t0 = back.boundary_ns + round(back.step_ns)
                if self.log is not None:
                    self.log("MIDI clock stopped: back to your beat")
        finally:
            self.close()
        return self.stats

    @property
    def tempo(self) -> TempoEstimate | None:
        """The player's tempo and beat as last estimated (None before it is heard, or when the
        grid does not follow the player): bpm, confidence, locked. For the log and live view."""
        grid = self.grid
        if self._midi_clock_heard or not isinstance(grid, PlayerGrid):
            return None
        return grid.estimate

    def _log_tempo(self) -> None:
        """Report the player's tempo when it locks, unlocks or moves by more than 1 bpm."""
        estimate = self.tempo
        if self.log is None or estimate is None:
            return
        moved = abs(estimate.bpm - self._logged_bpm) > 1.0
        if estimate.locked != self._logged_locked or (estimate.locked and moved):
            self._logged_locked, self._logged_bpm = estimate.locked, estimate.bpm
            self.log(estimate.describe() + ("" if estimate.locked else ", not locked: --bpm"))

    def close(self) -> None:
        """Release every note (ledger note-offs, then CC 123 and CC 120); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._pending_action = None
        self._sounding = None
        self.notes.close_gate(extra_channels=(self.options.channel,))
        self.stats.notes_sent = self.notes.notes_sent
        self.stats.held_timeouts = self.listener.timed_out

    # --- called by the scheduler ------------------------------------------------------------

    def handle(self, event: InputEvent, message: Message) -> None:
        """One valid input message, as soon as it is taken off the inbox."""
        kind = message.kind
        if kind is Kind.NOTE_ON or kind is Kind.NOTE_OFF:
            wanted = self.options.input_channel
            if wanted is not None and message.channel != wanted:
                self.stats.ignored["other_channel"] += 1
                return
            if self.recorder is not None:
                self.recorder.add(PLAYER, event.time_ns, event.data)
            if self.options.thru:
                self.notes.forward(event.data)
            if kind is Kind.NOTE_ON:
                self.listener.note_on(message.data1, self._steps_closed)
                self.dynamics.observe(message.data2)
                if isinstance(self.grid, PlayerGrid):
                    self.grid.observe_onset(event.time_ns, message.data2)  # accents: downbeat
                    self._log_tempo()
                elif self.grid is not None:
                    self.grid.observe_onset(event.time_ns)
                if self.mode.player_onset():
                    self._silence_agent()
                    self.stats.interruptions += 1
            else:
                # A release stamped before the step began did not sound in it.
                start = self._step_start_ns
                self.listener.note_off(
                    message.data1, before_step=start is not None and event.time_ns <= start
                )
        elif kind is Kind.CONTROL:
            self._control(event, message)
        elif kind in CLOCK_KINDS:
            if self.options.clock == "auto" and self._given_grid is None:
                self._clock_watch.observe(kind, event.time_ns, message.data1, message.data2)
            else:
                self.stats.ignored[kind.value] += 1
        elif kind is Kind.PROGRAM:
            if self.program_handler is not None and message.channel == self.control_channel:
                self.program_handler(message.data1)
            else:
                self.stats.ignored["program_change"] += 1
        else:
            self.stats.ignored[kind.value] += 1

    def prepare(self) -> None:
        """Shortly before a decision: one throwaway inference, so that the real one finds the
        model's weights in cache (an inference after idle milliseconds is several times slower)."""
        self.decider.policy.q_values(self.decider.state(0, False, 0.0))

    def decide(self, step: int, boundary_ns: int | None = None) -> None:
        """Close the player's last step, and choose the agent's action for grid ``step``, whose
        boundary is at ``boundary_ns`` (None: not known yet, MIDI clock)."""
        if self._decided_unsent:
            # The grid changed hands between this decision and its boundary (MIDI clock took
            # over, or handed back): the decision stands, sent on the new grid's step.
            self._closing_step = step
            self._step_start_ns = boundary_ns
            return
        self._decided_unsent = True
        self._close_step(step)
        self._change_mode_if_held()
        self._step_start_ns = boundary_ns
        with self._swap_lock:
            ready, self._next_policy = self._next_policy, None
        if ready is not None:
            self.decider.adopt(ready)
            self.stats.model_swaps += 1
            self._release_at_send = True
        was_answering = getattr(self.mode, "answering", False)
        self._closing_step = step
        if not self.mode.plays(step):
            self._pending_action = None
            return
        if getattr(self.mode, "answering", False) and not was_answering:
            self.stats.answers += 1
        answering, progress = self.mode.context(step)
        o = self.options
        room = getattr(self.mode, "room", None)
        gate = None
        if room is not None:  # a duet leaves the player room (``DuetMode.room``)
            pitches = self.decider.note_pitches(self.register_shift)
            gate = room(step, pitches, self.listener.held, self.density, self.rng)
        action = self.decider.decide(
            step,
            answering,
            progress,
            self.temperature,
            self.density,
            self.register_shift,
            o.register_low,
            o.register_high,
            note_required=self.mode.opens_turn(),
            gate=gate,
        )
        self._pending_action = self.mode.restrict(action, self._held_steps)
        self.stats.decisions += 1

    def send(self, step: int) -> int | None:
        """At the boundary of ``step``: only the MIDI of the decided action goes out. Returns
        when its first message left (clock ns), None when there was nothing to send."""
        action, self._pending_action = self._pending_action, None
        self._decided_unsent = False
        channel = self.options.channel
        self._agent_onset = False
        sent_ns = None
        if action is None:
            # Not the agent's turn (or it was cut short): make sure nothing of it still sounds.
            if self._sounding is not None:
                sent_ns = self.clock.now_ns()
                self.notes.note_off(channel, self._sounding)
                self._sounding = None
                self._held_steps = 0
        else:
            change = self.decider.note_change(action, self._sounding, self.register_shift)
            note_off = change.note_off
            if note_off is None and self._release_at_send and self._sounding is not None:
                note_off = self._sounding  # model swap: the old model's note does not outlive it
            if note_off is not None:
                sent_ns = self.clock.now_ns()
                self.notes.note_off(channel, note_off)
                self._sounding = None
                self._held_steps = 0
            if change.note_on is not None:
                if sent_ns is None:
                    sent_ns = self.clock.now_ns()
                self.notes.note_on(channel, change.note_on, self.dynamics.velocity(step))
                self._sounding = change.note_on
                self._agent_onset = True
                self._held_steps = 0
            if self._sounding is not None:
                self._held_steps += 1
        self._release_at_send = False
        self.stats.notes_sent = self.notes.notes_sent
        if not self._key_folded:
            self.decider.update_key(move_frame=False)  # after sending: off the decision path
        return sent_ns

    def skip(self, step: int) -> None:
        """A step the loop could not make in time: no decision, the agent's note goes on."""
        if self._decided_unsent:
            self._decided_unsent = False  # that decision closed the step before this one
        else:
            self._close_step(step)
        self._closing_step = step
        if not self._key_folded:
            self.decider.update_key(move_frame=False)
        self._pending_action = None
        if self._sounding is not None:
            self._held_steps += 1
        self._agent_onset = False

    def transport_start(self) -> None:
        """MIDI Start: from the top; the agent falls silent and its mode starts over."""
        self._silence_agent()
        self._decided_unsent = False
        self.mode = self._make_mode(self.mode.name)

    def transport_stop(self) -> None:
        """MIDI Stop: the agent falls silent until Start or Continue."""
        self._silence_agent()
        self._decided_unsent = False

    # --- internals --------------------------------------------------------------------------

    def _make_mode(self, name: str) -> Mode:
        o, spb = self.options, self.decider.spec.steps_per_bar
        return make_mode(
            name,
            lambda call_steps: answer_steps(call_steps, spb, o.answer_bars_max, o.answer_bars),
            spb,
            o.duet_bars,
            max_hold_steps=max(1, round(o.max_hold_bars * spb)),
            duet_wait_notes=o.duet_wait_notes,
        )

    def _close_step(self, next_step: int) -> None:
        """Push the step that just ended (both parts) into the windows. Where a turn may start
        (the frame may move), fold it into the key now, so that the turn's first state is in
        the key of everything the player played before it, as in training; elsewhere the fold
        waits until after sending (``_key_folded`` False), off the decision path."""
        sounding_mask = self.listener.step_sounding
        player = self.listener.close_step(self._steps_closed)
        if self.listener.timed_out_pitches:
            # The player's note-off was lost upstream: what thru forwarded must end too.
            for pitch in self.listener.timed_out_pitches:
                self.notes.release_forwarded(pitch)
            self.listener.timed_out_pitches.clear()
        hear_pitches = getattr(self.mode, "hear_pitches", None)
        if hear_pitches is not None:
            hear_pitches(sounding_mask)  # a duet keeps its register apart from the player's
        self.mode.observe_player_step(self._closing_step, player.onset, player.top >= 0)
        if self._sounding is None:
            agent = SILENT_STEP
        else:
            top = self._sounding - self.register_shift
            agent = StepKey(self._agent_onset, 1 << (top % PITCH_CLASSES), top)
        self.decider.push_step(agent, StepKey(player.onset, player.chroma_bits, player.top))
        self._steps_closed += 1
        self._key_folded = self.mode.frame_may_move(next_step)
        if self._key_folded:
            self.decider.update_key(move_frame=True)

    def _change_mode_if_held(self) -> None:
        request = self._mode_request
        if (
            request is not None
            and request[2] >= MODE_MESSAGES
            and self._steps_closed - request[1] >= self.decider.spec.steps_per_beat
        ):
            self._mode_request = None
            self._silence_agent()
            self.mode = self._make_mode(request[0])

    def _silence_agent(self) -> None:
        self._pending_action = None
        if self._sounding is not None:
            self.notes.note_off(self.options.channel, self._sounding)
            self._sounding = None

    @property
    def control_channel(self) -> int:
        """The one channel live controls (CCs, program changes) are taken from: the controls
        file's ``channel``; with ``channel = 0`` (the packaged file) ``--input-channel``, else
        channel 1. Fixed for the session, never the channel of the latest note: random traffic
        on other channels changes nothing."""
        if self.controls.channel is not None:
            return self.controls.channel
        if self.options.input_channel is not None:
            return self.options.input_channel
        return DEFAULT_CONTROL_CHANNEL

    def _control(self, event: InputEvent, message: Message) -> None:
        action = None
        if message.channel == self.control_channel:
            action = self.controls.apply(message.data1, message.data2)
        if action is None and message.data1 == SUSTAIN_PEDAL:
            wanted = self.options.input_channel
            if wanted is None or message.channel == wanted:
                start = self._step_start_ns
                self.listener.sustain_pedal(
                    message.data2 >= PEDAL_DOWN_MIN,
                    before_step=start is not None and event.time_ns <= start,
                )
            return
        if action is None:
            if message.data1 in (ALL_NOTES_OFF, ALL_SOUND_OFF):
                self.listener.all_off()  # the player's controller released everything
            self.stats.ignored["control_change"] += 1
            return
        if action.name == "temperature":
            self.temperature = float(action.value)
        elif action.name == "density":
            self.density = min(1.0, max(0.0, float(action.value)))
        elif action.name == "register_shift":
            if int(action.value) != self.register_shift:
                self._silence_agent()
                self.register_shift = int(action.value)
        elif action.name == "mode":
            # Deliberate only: the mode changes once the control has said the new side in
            # MODE_MESSAGES messages in a row and stayed there for a beat
            # (``_change_mode_if_held``); a stray or wavering CC changes nothing.
            asked = str(action.value)
            request = self._mode_request
            if asked == self.mode.name:
                self._mode_request = None
            elif request is None or request[0] != asked:
                self._mode_request = (asked, self._steps_closed, 1)
            else:
                self._mode_request = (asked, request[1], request[2] + 1)
        elif action.name == "panic":
            self._pending_action = None
            self._sounding = None
            self.notes.panic(extra_channels=(self.options.channel,))
            self.listener.all_off()
