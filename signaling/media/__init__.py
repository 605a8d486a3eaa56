"""Media decisions of the control plane that need no I/O: codec policy per gateway."""
