"""The evaluator: batched log-likelihood scoring and greedy generation on a causal LM.

The model interface is list in, list out::

    loglikelihood([LoglikelihoodRequest(context, continuation), ...]) -> [float, ...]
    generate([GenerationRequest(prompt, max_new_tokens, stop), ...]) -> [str, ...]

``context`` and ``continuation`` are tokenised separately and concatenated, so whitespace belongs
to the continuation (``" positive"``); no special tokens are added beyond what the tokenizer adds
to the context itself.

Log-likelihood (``loglikelihood.py``): requests that share a context (an example's answer choices) share one
forward pass of that context.  Contexts are sorted by length and packed into batches under a token budget,
right-padded with an attention mask; the vocabulary head and log-softmax run only at the positions
that are read.  A continuation's first token is read off the context's last state; longer
continuations run their remaining tokens on the context's key/value cache, with positions that
continue each context.  A context with a single continuation (a text's perplexity, the channel form's
passage) runs as one row with it instead, one pass and no cache to copy.  So a score does not depend on
the batch it lands in or on the order of the requests (tested to 1e-4 for any batch size and order).

Generation (``generation.py``, ``stream.py``) is greedy: prompts are left-padded (positions follow the attention
mask), decoding uses the KV cache, a row leaves the batch once it has hit EOS or a stop string
(``model.generate`` runs every row until the last one stops), the next prompts join the rows still decoding once
a quarter of the batch is free (``_streamed``: otherwise, batch after batch, each batch's few long answers would
decode alone, one pass over every weight per token), and each output is cut at its first stop string.  A
model whose generation config asks for more than argmax (a repetition penalty, say) decodes through
``model.generate``.  ``add_special_tokens=False`` is for prompts already rendered by a chat template.

Shared prefixes (``prefix.py``): when the prompts of one call share a leading run of tokens (few-shot
demonstrations, instructions: 73 of nli's ~108 tokens, 117 of reasoning's ~145), that run is encoded once, at
batch size one, and its key/value cache is lent to every batch; each example then encodes only its own tokens,
with positions that continue the prefix.  Scores and outputs equal the unshared computation's up to
float rounding (tested: log-likelihoods to 1e-4, identical greedy outputs on the probe sets).  Rows of
generation's joined batches are brought to one width, and back, by cache surgery (``kvcache.py``).

Grouped-query attention (``attention.py``; SmolLM2: 9 query heads on 3 key/value heads): on a CPU the
evaluator's passes run ``_grouped_sdpa``, which lets SDPA read each shared key/value head in place where
transformers, given a mask, copies it once per query head; the same outputs, and the model's attention setting
is restored after each pass.

Length (``length.py``): a model reads at most ``context`` positions (``models.context_length``: its config's
position table or context; its tokenizer's for a model whose config names none).  A request longer than that is
cut from the left, as lm-evaluation-harness does: a context keeps its last tokens before its continuation, a
prompt its last tokens before the new ones.  ``truncated`` says which requests are cut (the gate counts them in
its reports); both models of a comparison read the same cut requests.

Batch size (``batching.py``): a token budget per forward pass (padding included) and a row cap.  The defaults suit the
device (``default_token_budget``, ``default_max_batch``): on a CPU 4,096 tokens and 64 rows; on CUDA the
budget is what half the GPU's free memory holds for the model's activations and keys and values
(``cuda_token_budget``) and the cap 512 rows.  On CUDA an out-of-memory error halves the budget and
retries the batch, so an automatic size backs off to what fits.  Log-likelihood batches are cut where
padding would cost more than another forward pass (``_least_padded``); generation batches are filled up,
since each of them pays for every decoding step.

``Evaluator`` is composed of ``LoglikelihoodScoring`` and ``Generation``, both built on ``ModelPasses``
(``passes.py``: the forward pass and the batch layouts), which holds ``Lengths`` and ``BatchPolicy``.  The
requests and the records they are grouped into are in ``requests.py``.  The parts read ``input_device`` and
``HEAD_POSITIONS`` from this package when called, so that patching them here (as the tests do) reaches every
part.  Measurements behind these choices: docs/performance.md, "Evaluator design notes".
"""

from __future__ import annotations

from typing import Any

# The names editguard.evaluator held as one module, re-exported: the public ones, and the private ones that tests,
# editguard.backends.engine and the parts' callers reach for.
from editguard.evaluator.attention import GROUPED_SDPA, _grouped_sdpa, _register_grouped_sdpa
from editguard.evaluator.batching import (
    CPU_TOKEN_BUDGET,
    CUDA_MAX_BATCH,
    CUDA_MEMORY_SHARE,
    CUDA_TOKEN_BUDGET,
    CUDA_TOKEN_BUDGET_RANGE,
    DEFAULT_MAX_BATCH,
    GENERATION_BUDGET_FACTOR,
    PASS_COST,
    Item,
    cuda_token_budget,
    default_max_batch,
    default_token_budget,
)
from editguard.evaluator.generation import REFILL_SHARE, Generation
from editguard.evaluator.kvcache import Layers, _select_rows, _stacked, _widened_mask, _without_columns
from editguard.evaluator.loglikelihood import HEAD_POSITIONS, LoglikelihoodScoring, _head_groups
from editguard.evaluator.prefix import MIN_CLUSTER_ROWS, MIN_SHARED_PREFIX, NO_PREFIX, _Prefix, prefix_clusters, shared_prefix_length
from editguard.evaluator.requests import GenerationRequest, LoglikelihoodRequest, _Context, _cut, _Prompt
from editguard.evaluator.stream import _Rows
from editguard.models import context_length, input_device  # input_device: read through this package by the parts

EVALUATOR_VERSION = 11  # part of the output-cache key: bump when scores could change (3: shared prefixes, 4: batch cuts,
# 5: a context with one continuation scored in one pass, 6: the vocabulary head over many rows' positions at once,
# 7: grouped key/value heads read in place by attention, 8: a prefix per cluster of prompts, 9: generation's prompt
# pass in chunks of like width, 10: later prompts join the rows still decoding, 11: requests cut to the model's context)


class Evaluator(LoglikelihoodScoring, Generation):
    """Scores requests on one model; holds no state besides the model, tokenizer and batch policy."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        token_budget: int | None = None,
        max_batch: int | None = None,
        progress: bool = False,
        share_prefix: bool = True,
        own_decoding: bool = True,
        context: int | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self._context = context
        self.token_budget = token_budget or default_token_budget(model)
        self.max_batch = max_batch or default_max_batch(model)
        self.progress = progress
        self.share_prefix = share_prefix
        self.own_decoding = own_decoding  # False: every generation through model.generate (the reference)
