"""The project's config loader: ``--params block.key=value`` changes that key and keeps the
rest of its block, whatever ``conf/local`` holds.

Kedro 1.7's ``OmegaConfigLoader`` merges the runtime parameters into each environment's
parameters, then merges the environments, by default destructively (the run environment's
top-level blocks replace base's). With any parameters file in ``conf/local``,
``--params training.epochs=2`` gives ``conf/local`` a ``training: {epochs: 2}`` block that
replaces base's whole ``training`` block, and the run stops on ``training.seed: is required``.

Kedro's documented remedy, soft merging for parameters (kedro-org/kedro#3456, PR #4096,
``CONFIG_LOADER_ARGS["merge_strategy"] = {"parameters": "soft"}``), is not used: it would merge
every ``conf/local`` block key by key into base's, and the project relies on ``conf/local``
replacing whole blocks. docs/tuning.md, docs/optimizers.md and docs/regularization.md tell users
to write whole blocks there so that keys they leave out are gone (a search space, a variant),
``tests/pipelines/tuning/conftest.py`` does the same, and a user's ``columns: {target: label}``
for their own table must not keep the phone table's feature names.

So environments merge as Kedro does, and each runtime block goes to the one environment whose
copy of that block the merge keeps: the run environment's for the blocks its files define,
base's for the rest (blocks new to both included). The result is the merged files with the
runtime parameters applied on top, and each environment still resolves its own
interpolations with the runtime values it holds, as in Kedro. Only ``parameters`` changes:
catalog, credentials, globals and kedro-mlflow's ``mlflow`` load as Kedro loads them, and
without ``--params`` nothing differs from ``OmegaConfigLoader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import DictConfig, OmegaConf

# Runtime parameters travel as one more configuration of an environment, after its files.
_RUNTIME_PARAMS = Path("<runtime params>")


class RuntimeParamsLastConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` whose runtime parameters apply after the environments merge."""

    def _resolve_from_raw_config(
        self,
        key: str,
        base_configs: dict[Path, DictConfig],
        env_configs: dict[Path, DictConfig],
        base_path: str,
        env_path: str,
        processed_files: set[Path],
    ) -> dict[str, Any]:
        if key == "parameters" and self.runtime_params:
            env_blocks = {block for config in env_configs.values() for block in config}
            to_env = {k: v for k, v in self.runtime_params.items() if k in env_blocks}
            to_base = {k: v for k, v in self.runtime_params.items() if k not in env_blocks}
            if to_base:
                base_configs = {**base_configs, _RUNTIME_PARAMS: OmegaConf.create(to_base)}
            if to_env:
                env_configs = {**env_configs, _RUNTIME_PARAMS: OmegaConf.create(to_env)}
        return super()._resolve_from_raw_config(
            key, base_configs, env_configs, base_path, env_path, processed_files
        )

    def _merge_and_resolve(self, key: str, config_per_file: dict[Path, DictConfig]) -> Any:
        if key != "parameters":
            return super()._merge_and_resolve(key, config_per_file)
        # Kedro's own parameters branch, less its merge of every runtime parameter into
        # every environment: _resolve_from_raw_config has placed each where it belongs.
        if not config_per_file:
            return {}
        return OmegaConf.to_container(
            OmegaConf.unsafe_merge(*config_per_file.values()), resolve=True
        )
