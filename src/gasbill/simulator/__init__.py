"""A stand-in for the iotmeterv1 platform and a fleet of meters.

- `fleet.Simulator(settings, push_client=...)`: the world; `advance(until)`,
  `add_meter(...)`, `meter(comm_no)`, `summary()`, `set_faults(...)`.
- `settings.SimulatorSettings`, `faults.FaultSettings`, `pusher.PushTarget`.
- `api.create_simulator_app(sim)`: the platform over HTTP (`gasbill simulate`).
- `transport.SimulatorTransport(sim)`: the same in-process, for our clients.

Kept import-light: nothing here imports FastAPI until those modules are used.
"""
