"""The model's forward pass as every path of the evaluator runs it.

``_forward`` runs the model body (hidden states) when the vocabulary head can run apart (``_split_head``), so the
head and log-softmax run only at the positions that are read (``_logits``); otherwise the whole model (logits).  A
grouped-query model's passes read its shared key/value heads in place (``attention``).  Inputs go to the model's
input device (a model split by accelerate included).  Batches are laid out right-padded for scoring
(``_right_padded``) and, for generation, as the shared prefix followed by each prompt left-padded (``_prompt_rows``)."""

from __future__ import annotations

import functools
from typing import Any

from editguard import evaluator as package  # names the tests patch on the package (input_device)
from editguard import stack
from editguard.evaluator.attention import _grouped_attention, _uses_grouped_sdpa
from editguard.evaluator.batching import BatchPolicy
from editguard.evaluator.length import Lengths
from editguard.evaluator.prefix import _Prefix
from editguard.evaluator.requests import _Prompt


class ModelPasses(Lengths, BatchPolicy):
    """An evaluator's model, tokenizer, batch policy and forward passes, which its scoring and generation share."""

    share_prefix: bool  # whether prompts share the key/value cache of their common prefix (``prefix``)
    own_decoding: bool  # False: every generation through model.generate (the reference)

    def _forward(self, input_ids: Any, attention: Any, *, use_cache: bool = False, past: Any = None, **positions: Any) -> tuple[Any, Any]:
        """Hidden states (or logits, when the head must run whole) and the key/value cache."""
        import torch

        device = package.input_device(self.model)  # a model split by accelerate included
        extra = {key: value.to(device) for key, value in positions.items()}
        module = self.model.base_model if self._split_head else self.model
        with torch.inference_mode(), _grouped_attention(self.model, self._shares_kv_heads):
            output = module(
                input_ids=input_ids.to(device),
                attention_mask=None if attention is None else attention.to(device),
                use_cache=use_cache or past is not None,
                **{stack.cache_argument(module): past},
                **extra,
            )
        states = output.last_hidden_state if self._split_head else output.logits
        return states, stack.returned_cache(output)

    @functools.cached_property
    def _shares_kv_heads(self) -> bool:
        """Whether the evaluator's forward passes run ``_grouped_sdpa`` instead of transformers' ``sdpa``
        (``attention._uses_grouped_sdpa``: on a CPU, for a grouped-query model)."""
        return _uses_grouped_sdpa(self.model)

    def _logits(self, states: Any) -> Any:
        import torch

        if not self._split_head:
            return states  # already logits
        with torch.inference_mode():
            return self.model.get_output_embeddings()(states)

    @property
    def _split_head(self) -> bool:
        """Run the body once and the vocabulary head only at read positions, unless the model post-processes logits."""
        config = self.model.config
        return (
            self.model.get_output_embeddings() is not None
            and self.model.base_model is not self.model
            and getattr(config, "final_logit_softcapping", None) is None
            and getattr(config, "logit_scale", None) is None
        )

    def _right_padded(self, rows: list[tuple[int, ...]]) -> tuple[Any, Any]:
        import torch

        width = max(len(tokens) for tokens in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)  # (rows, seq)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for row, tokens in enumerate(rows):
            input_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            attention[row, : len(tokens)] = 1
        return input_ids, attention

    def _prompt_rows(self, batch: list[_Prompt], prefix: _Prefix) -> tuple[Any, Any]:
        """Input ids and attention mask of a batch: the shared prefix, then each prompt's own tokens left-padded after
        it (pads sit between the two, masked, and positions follow the attention mask)."""
        import torch

        shared = len(prefix)
        width = shared + max(len(item.tokens) - shared for item in batch)
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)  # (batch, seq)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        input_ids[:, :shared] = torch.tensor(prefix.tokens, dtype=torch.long)
        attention[:, :shared] = 1
        for row, item in enumerate(batch):
            input_ids[row, width - len(item.tokens) + shared :] = torch.tensor(item.tokens[shared:])
            attention[row, width - len(item.tokens) + shared :] = 1
        device = package.input_device(self.model)  # a model split by accelerate included
        return input_ids.to(device), attention.to(device)

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0
