"""One registration helper for every name → entry table the flags read (big_vision's
`pp/registry.py` `Registry.register`): backbones, poolings, fusions, datasets and list makers.

A `Registry` is a dictionary that refuses a second entry under a name it holds, naming the entry
already there, so a plugin cannot silently replace a built-in. Registering the very same entry
again is allowed (re-importing a module that registers). `temporarily` registers inside a block,
for tests.
"""

import contextlib


class Registry(dict):
    """name → entry of one `kind` ("backbone", "pooling" ...); `REGISTRY["name"] = entry` and
    `register("name", entry)` both refuse a name already taken by another entry."""

    def __init__(self, kind, entries=()):
        super().__init__()
        self.kind = kind
        for name, entry in dict(entries).items():
            self[name] = entry

    def __setitem__(self, name, entry):
        if name in self and self[name] is not entry and self[name] != entry:
            raise ValueError(f"{self.kind} {name!r} is already registered (as {self[name]!r}); pick another name")
        super().__setitem__(name, entry)

    def update(self, *args, **kwargs):
        for name, entry in dict(*args, **kwargs).items():
            self[name] = entry

    def setdefault(self, name, entry=None):
        if name not in self:
            self[name] = entry
        return self[name]

    def copy(self):
        return Registry(self.kind, self)

    def register(self, name, entry):
        """Adds `entry` under `name` and returns it."""
        self[name] = entry
        return entry

    def lookup(self, name, flag=None):
        """The entry of `name`; an unknown name is an error listing the registered ones."""
        if name not in self:
            what = f"{self.kind} ({flag})" if flag else self.kind
            raise ValueError(f"{what} must be one of {sorted(self)}, got {name!r}")
        return self[name]

    @contextlib.contextmanager
    def temporarily(self, name, entry):
        """Registers `entry` as `name` for the duration of a `with` block."""
        self.register(name, entry)
        try:
            yield entry
        finally:
            super().pop(name, None)
