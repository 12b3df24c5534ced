"""The real-time side of deepjam: MIDI ports, clock, listener, ONNX policy, scheduler.

Depends on ``exports`` only; never on ``training``, never on torch.
"""
