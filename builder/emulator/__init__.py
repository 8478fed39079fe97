"""A local HTTPS emulator of the Azure Resource Manager endpoints builder's publisher uses.

``EmulatorServer(state_dir, port, config).start()`` serves in a thread; ``builder emulator`` in the foreground.
Routes are discovered from ``builder/emulator/routes_*.py`` (each defines ``register(router)``).
"""

from builder.emulator.config import EmulatorConfig, Fault
from builder.emulator.server import ArmError, EmulatorServer, Request, Response, Router

__all__ = ["ArmError", "EmulatorConfig", "EmulatorServer", "Fault", "Request", "Response", "Router"]
