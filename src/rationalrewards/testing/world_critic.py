"""A scripted critic for the synthetic world: a ``ScriptedBackend`` responder that knows the scene behind each image.

A stand-in for the privileged teacher (``synthetic-teacher``) in tests of the world generator and the
demo: it finds the judged image in the world's registry, judges it against the request stated in the
prompt (``truth.judge``), writes a protocol critique (``format.render_critique``) with the true scores,
and a refined request that restates every failed constraint more explicitly (the teacher's own
``synthetic.critic.refine_request``, applied to the request the image was made from). Never shown to a user.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from ..refine.generators.world import content_key
from ..rubric import Task, dimensions_for
from ..schema import Critique
from ..synthetic.critic import refine_request
from ..synthetic.generator import GenerationRecord
from ..synthetic.truth import judge
from ..synthetic.world import World, default_world

_REQUEST_RE = re.compile(r"^(?:User request|Editing instruction): (.*)$", re.M)


@dataclass
class WorldCritic:
    """``responder(conversation, i) -> protocol text``; ``world`` defaults to ``default_world()``."""

    world: World | None = None
    seen: list[str] = field(default_factory=list)

    def __call__(self, conversation: Any, sample_index: int = 0) -> str:
        from ..format import render_critique

        world = self.world or default_world()
        images = conversation.images()
        m = _REQUEST_RE.search("\n".join(msg.text for msg in conversation.messages))
        if not images or m is None:
            raise ValueError("WorldCritic needs a request line and an image in the prompt")
        rec = world.lookup(images[-1])
        if rec is None:
            raise ValueError("image not in the world's registry")
        self.seen.append(rec.image_hash or "")
        if rec.kind == "source" and len(images) > 1:
            # an edit that changed nothing has the source's pixels, so the registry returns the source's record
            rec = GenerationRecord(
                kind="generation", task="edit", scene=rec.scene, vividness=rec.vividness, size=rec.size,
                source=rec.scene, source_vividness=rec.vividness, supersample=rec.supersample,
                image_hash=rec.image_hash,
            )  # fmt: skip
        task = Task.EDIT if rec.task == "edit" else Task.T2I
        truth = judge(rec, m.group(1).strip())
        from ..synthetic.parse import parse_request

        original = parse_request(m.group(1).strip(), rec.task or "t2i")
        # restate on top of the request the image was made from (it keeps earlier rounds' emphasis)
        followed = (
            rec.request if rec.request is not None and content_key(rec.request) == content_key(original) else None
        )
        by_dim = truth.by_dimension()
        justifications = {}
        na = []
        for d in dimensions_for(task):
            if truth.scores.get(d.key) is None:
                na.append(d.key)
                justifications[d.key] = "The request asks for no text."
                continue
            found = by_dim.get(d.key, [])
            justifications[d.key] = "; ".join(f.description for f in found) or "No problems."
        failed = [f.constraint for f in truth.findings if f.constraint]
        base_text = rec.request_text if followed is not None and rec.request_text else m.group(1).strip()
        refined, raised = refine_request(base_text, rec.task or "t2i", failed, random.Random(len(self.seen)))
        if not raised:
            refined = None
        crit = Critique(
            task=task,
            request_analysis="The request as stated.",
            scores=dict(truth.scores),
            justifications=justifications,
            na=na,
            summary="; ".join(f.description for f in truth.findings) or "The image matches the request.",
            refinement_comments="State the failed constraints explicitly." if refined else None,
            refined_request=refined,
            parse_status="ok",
        )
        return render_critique(crit)
