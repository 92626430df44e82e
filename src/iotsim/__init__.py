"""iotsim: the vendor's iotmeterv1 platform and a fleet of its meters, simulated.

A foreign system to gasbill, written from the vendor's interface document
(`iot-platform-api.zh.txt`) alone: it imports nothing of `gasbill` (an
import-linter contract holds it to that), and has its own reading and writing
of the wire — envelope, command records, `ctrl_data` and `return_data`
(`vendor.py`), times, exact JSON — so that a misreading of the document on
gasbill's side is not mirrored here.

- `fleet.Simulator(settings, push_client=...)`: the world; `advance(until)`,
  `add_meter(...)`, `meter(comm_no)`, `comm_nos()`, `summary()`, `set_faults(...)`.
- `settings.SimulatorSettings`, `faults.FaultSettings`, `pusher.PushTarget`.
- `api.create_simulator_app(sim)`: the platform over HTTP (`gasbill simulate`),
  with the simulator's own control API under `/_sim/` (`control.py`).
- `transport.SimulatorTransport(sim)`: the same in-process, as an httpx transport.

Kept import-light: nothing here imports FastAPI until those modules are used.
"""
