"""Typed configuration: dataclass schemas, conversion from Hydra's config, value checks, presets."""
