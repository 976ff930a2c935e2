"""The core every layer stands on: the config, seeding, storage, the registries, the shared vocabulary,
the device and the callback protocol. Nothing here imports an upper layer."""
