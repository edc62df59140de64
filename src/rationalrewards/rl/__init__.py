"""RL with rational rewards: trainer-facing reward functions, advantages, the batching reward service and its client.

- ``rewards``: ``flow_grpo_reward`` (flow_grpo / DiffusionNFT convention) and ``trl_reward`` (TRL convention),
  thin adapters over one batched ``RationalRewardModel.score`` call (or a remote ``RewardClient``).
- ``advantages``: group-relative (GRPO) and decoupled per-dimension advantages, floors, ``PerPromptStatTracker``.
- ``service``: ``RewardBatcher``, the micro-batching queue behind the server's ``/v1/reward``.
- ``client``: ``RewardClient`` (sync + async, retries honouring ``Retry-After``) and ``remote_flow_grpo_reward``.

Importing this package is cheap; the submodules import numpy / torch / httpx only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FlowGRPOReward": "rewards",
    "TRLReward": "rewards",
    "RewardStats": "rewards",
    "flow_grpo_reward": "rewards",
    "trl_reward": "rewards",
    "to_pil_images": "rewards",
    "group_advantages": "advantages",
    "decoupled_advantages": "advantages",
    "apply_floor": "advantages",
    "PerPromptStatTracker": "advantages",
    "zero_std_ratio": "advantages",
    "RewardBatcher": "service",
    "QueueFullError": "service",
    "RewardTimeoutError": "service",
    "RewardClient": "client",
    "RewardClientError": "client",
    "remote_flow_grpo_reward": "client",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
