"""Multimodal personalized prompts (VIP5): the 29 templates as data, rendering with image
placeholders, tokenization with whole-word and category ids, the training mixture and
evaluation inputs, and batching.

Typical use::

    tok = prepare_tokenizer("/path/to/t5-tokenizer")          # or train one offline
    train = PromptDataset(dataset, tok, image_tokens=2, seed=0)
    loader = DataLoader(train, batch_size=32, shuffle=True,
                        collate_fn=lambda s: collate(s, tok))
    builder = PromptBuilder(dataset, tok, train.options)
    batch = collate(sequential_prompts(builder, users, histories, "A-3"), tok)
"""

from mfmrec.models.vip5.prompts.collate import IGNORE_INDEX, collate, placeholder_positions
from mfmrec.models.vip5.prompts.dataset import PromptDataset
from mfmrec.models.vip5.prompts.inference import (
    direct_prompts,
    explanation_prompts,
    sequential_prompts,
)
from mfmrec.models.vip5.prompts.render import (
    PLACEHOLDER,
    PromptContext,
    Rendered,
    render,
    user_number,
)
from mfmrec.models.vip5.prompts.tasks import (
    PromptBuilder,
    PromptOptions,
    PromptSample,
    sample_negatives,
)
from mfmrec.models.vip5.prompts.templates import (
    BY_ID,
    FAMILIES,
    HELD_OUT,
    SEEN_EVAL,
    TEMPLATES,
    Template,
    get_template,
    templates_of,
)
from mfmrec.models.vip5.prompts.tokenization import (
    Encoded,
    encode_input,
    encode_target,
    item_target_ids,
    load_tokenizer,
    placeholder_id,
    train_sentencepiece,
)
from mfmrec.models.vip5.prompts.vocab import prepare_tokenizer, tokenizer_corpus

__all__ = [
    "BY_ID", "FAMILIES", "HELD_OUT", "IGNORE_INDEX", "PLACEHOLDER", "SEEN_EVAL", "TEMPLATES",
    "Encoded", "PromptBuilder", "PromptContext", "PromptDataset", "PromptOptions",
    "PromptSample", "Rendered", "Template", "collate", "direct_prompts", "encode_input",
    "encode_target", "explanation_prompts", "get_template", "item_target_ids",
    "load_tokenizer", "placeholder_id", "placeholder_positions", "prepare_tokenizer",
    "render", "sample_negatives", "sequential_prompts", "templates_of", "tokenizer_corpus",
    "train_sentencepiece", "user_number",
]
