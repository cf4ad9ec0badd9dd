/* The built-in catalog of popular models: architecture facts only, from each
 * model's published Hugging Face config.json, and the list of tensors that
 * llama.cpp's converter (convert_hf_to_gguf.py) writes for it.
 *
 * Field order in the table: layers (num_hidden_layers), embedding (hidden_size),
 * heads (num_attention_heads), KV heads (num_key_value_heads), head dim
 * (head_dim, else hidden_size / heads), FFN (intermediate_size), vocab
 * (vocab_size), trained context (max_position_embeddings), tied
 * (tie_word_embeddings), then the tensor-set flags. */
#include "plan/plan_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LLAMA3  "llama", false, false, true,  false   /* llama3 rope scaling: rope_freqs */
#define LLAMA   "llama", false, false, false, false
#define QWEN2   "qwen2", true,  false, false, false   /* q/k/v biases */
#define QWEN3   "qwen3", false, true,  false, false   /* q/k RMSNorm, no biases */
#define GEMMA2  "gemma2", false, false, false, true   /* post-attention / post-FFN norms */
#define GEMMA3  "gemma3", false, true,  false, true   /* gemma2's norms and q/k RMSNorm */

#define QWEN3MOE "qwen3moe", false, true, false, false   /* qwen3 attention, experts in every layer */
#define PHI3    "phi3", false, false, false, false   /* fused attn_qkv and gate-up ffn_up */
/* gpt-oss: Q/K/V/output biases, attention sinks, the FFN's norm named post_attention_norm,
 * a router and experts with biases */
#define GPT_OSS "gpt-oss", true, false, false, false
/* encoders (no output head, no final norm; token type and embedding-norm tensors; each
 * layer's LayerNorms with biases after the attention and the FFN):
 * BERT: absolute position embeddings, Q/K/V/output and FFN biases, GELU FFN (up, down);
 * nomic-bert: rotary, a fused attn_qkv without biases, SwiGLU FFN (gate, up, down) */
#define BERT    "bert", true, false, false, false
#define NOMIC_BERT "nomic-bert", false, false, false, false

#define ENTRY(name, hf, aliases, family, L, E, H, KV, HD, FF, V, CTX, TIED, ARCHFLAGS) \
    { name, hf, aliases, family, L, E, H, KV, HD, FF, V, CTX, TIED, ARCHFLAGS, 0, 0, 0, 0, 0, false, NULL }
/* sliding-window attention: then the window (sliding_window), the layer pattern and
 * whether the sliding layers have a RoPE base of their own */
#define SWA_ENTRY(name, hf, aliases, family, L, E, H, KV, HD, FF, V, CTX, TIED, ARCHFLAGS, WIN, PAT, ROPE) \
    { name, hf, aliases, family, L, E, H, KV, HD, FF, V, CTX, TIED, ARCHFLAGS, 0, 0, 0, WIN, PAT, ROPE, NULL }
/* a mixture of experts: then experts (num_experts), per token (num_experts_per_tok), and
 * one expert's width */
#define MOE_ENTRY(name, hf, aliases, family, L, E, H, KV, HD, FF, V, CTX, TIED, ARCHFLAGS, NEXP, NUSED, FFEXP) \
    { name, hf, aliases, family, L, E, H, KV, HD, FF, V, CTX, TIED, ARCHFLAGS, NEXP, NUSED, FFEXP, 0, 0, false, NULL }
/* both: experts, then the sliding window; published with MXFP4 experts (gpt-oss) */
#define MOE_SWA_ENTRY(name, hf, aliases, family, L, E, H, KV, HD, FF, V, CTX, TIED, ARCHFLAGS, NEXP, NUSED, FFEXP, \
                      WIN, PAT) \
    { name, hf, aliases, family, L, E, H, KV, HD, FF, V, CTX, TIED, ARCHFLAGS, NEXP, NUSED, FFEXP, WIN, PAT, false, \
      "MXFP4_MOE" }

static const qfit_plan_facts catalog[] = {
    /* ---- Meta Llama 3.x. config.json of meta-llama/Llama-3.1-8B-Instruct: hidden_size 4096,
     * intermediate_size 14336, num_hidden_layers 32, num_attention_heads 32,
     * num_key_value_heads 8, vocab_size 128256, max_position_embeddings 131072,
     * tie_word_embeddings false, rope_scaling.rope_type "llama3" (-> rope_freqs). */
    ENTRY("llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct",
          "llama3.1|meta-llama/Meta-Llama-3.1-8B-Instruct|meta-llama/Llama-3.1-8B|Llama-3.1-8B-Instruct",
          "llama3", 32, 4096, 32, 8, 128, 14336, 128256, 131072, false, LLAMA3),
    /* meta-llama/Llama-3.1-70B-Instruct: hidden 8192, intermediate 28672, 80 layers, 64 heads,
     * 8 KV heads, vocab 128256, max_position_embeddings 131072, untied, llama3 rope. */
    ENTRY("llama3.1:70b", "meta-llama/Llama-3.1-70B-Instruct",
          "meta-llama/Meta-Llama-3.1-70B-Instruct|meta-llama/Llama-3.1-70B|Llama-3.1-70B-Instruct",
          "llama3", 80, 8192, 64, 8, 128, 28672, 128256, 131072, false, LLAMA3),
    /* meta-llama/Llama-3.2-1B-Instruct: hidden 2048, intermediate 8192, 16 layers, 32 heads,
     * 8 KV heads, head_dim 64, vocab 128256, max_position_embeddings 131072,
     * tie_word_embeddings true, llama3 rope. */
    ENTRY("llama3.2:1b", "meta-llama/Llama-3.2-1B-Instruct",
          "meta-llama/Llama-3.2-1B|Llama-3.2-1B-Instruct",
          "llama3", 16, 2048, 32, 8, 64, 8192, 128256, 131072, true, LLAMA3),
    /* meta-llama/Llama-3.2-3B-Instruct: hidden 3072, intermediate 8192, 28 layers, 24 heads,
     * 8 KV heads, head_dim 128, vocab 128256, 131072, tied, llama3 rope. */
    ENTRY("llama3.2:3b", "meta-llama/Llama-3.2-3B-Instruct",
          "llama3.2|meta-llama/Llama-3.2-3B|Llama-3.2-3B-Instruct",
          "llama3", 28, 3072, 24, 8, 128, 8192, 128256, 131072, true, LLAMA3),
    /* meta-llama/Llama-3.3-70B-Instruct: same shape as Llama 3.1 70B (8192 / 28672 / 80 / 64 / 8,
     * vocab 128256, 131072, untied, llama3 rope). */
    ENTRY("llama3.3:70b", "meta-llama/Llama-3.3-70B-Instruct",
          "llama3.3|Llama-3.3-70B-Instruct",
          "llama3", 80, 8192, 64, 8, 128, 28672, 128256, 131072, false, LLAMA3),

    /* ---- Mistral. mistralai/Mistral-7B-Instruct-v0.3 (Ollama's mistral:7b): hidden 4096,
     * intermediate 14336, 32 layers, 32 heads, 8 KV heads, vocab 32768,
     * max_position_embeddings 32768, untied, no rope scaling. */
    ENTRY("mistral:7b", "mistralai/Mistral-7B-Instruct-v0.3",
          "mistral|mistralai/Mistral-7B-v0.3|Mistral-7B-Instruct-v0.3",
          "mistral", 32, 4096, 32, 8, 128, 14336, 32768, 32768, false, LLAMA),
    /* mistralai/Mistral-Small-24B-Instruct-2501: hidden 5120, intermediate 32768, 40 layers,
     * 32 heads, 8 KV heads, head_dim 128 (so q is 4096 wide, not 5120), vocab 131072,
     * max_position_embeddings 32768, untied. */
    /* mistralai/Mixtral-8x7B-Instruct-v0.1 (Ollama's mixtral:8x7b): hidden 4096, intermediate
     * 14336 (each expert), 32 layers, 32 heads, 8 KV heads, vocab 32000,
     * max_position_embeddings 32768, num_local_experts 8, num_experts_per_tok 2, untied;
     * llama.cpp converts it as llama with expert_count. */
    MOE_ENTRY("mixtral:8x7b", "mistralai/Mixtral-8x7B-Instruct-v0.1",
              "mixtral|mistralai/Mixtral-8x7B-v0.1|Mixtral-8x7B-Instruct-v0.1",
              "mixtral", 32, 4096, 32, 8, 128, 14336, 32000, 32768, false, LLAMA, 8, 2, 14336),
    ENTRY("mistral-small:24b", "mistralai/Mistral-Small-24B-Instruct-2501",
          "mistral-small|mistralai/Mistral-Small-24B-Base-2501|Mistral-Small-24B-Instruct-2501",
          "mistral", 40, 5120, 32, 8, 128, 32768, 131072, 32768, false, LLAMA),

    /* ---- Qwen2.5 (architecture qwen2: q/k/v biases). Qwen/Qwen2.5-0.5B-Instruct: hidden 896,
     * intermediate 4864, 24 layers, 14 heads, 2 KV heads, vocab 151936, 32768, tied. */
    ENTRY("qwen2.5:0.5b", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B|Qwen2.5-0.5B-Instruct",
          "qwen2.5", 24, 896, 14, 2, 64, 4864, 151936, 32768, true, QWEN2),
    /* Qwen/Qwen2.5-1.5B-Instruct: 1536 / 8960 / 28 layers / 12 heads / 2 KV, vocab 151936, tied. */
    ENTRY("qwen2.5:1.5b", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B|Qwen2.5-1.5B-Instruct",
          "qwen2.5", 28, 1536, 12, 2, 128, 8960, 151936, 32768, true, QWEN2),
    /* Qwen/Qwen2.5-3B-Instruct: 2048 / 11008 / 36 / 16 / 2, vocab 151936, tied. */
    ENTRY("qwen2.5:3b", "Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-3B|Qwen2.5-3B-Instruct",
          "qwen2.5", 36, 2048, 16, 2, 128, 11008, 151936, 32768, true, QWEN2),
    /* Qwen/Qwen2.5-7B-Instruct: 3584 / 18944 / 28 / 28 / 4, vocab 152064, 32768, untied. */
    ENTRY("qwen2.5:7b", "Qwen/Qwen2.5-7B-Instruct", "qwen2.5|Qwen/Qwen2.5-7B|Qwen2.5-7B-Instruct",
          "qwen2.5", 28, 3584, 28, 4, 128, 18944, 152064, 32768, false, QWEN2),
    /* Qwen/Qwen2.5-14B-Instruct: 5120 / 13824 / 48 / 40 / 8, vocab 152064, untied. */
    ENTRY("qwen2.5:14b", "Qwen/Qwen2.5-14B-Instruct", "Qwen/Qwen2.5-14B|Qwen2.5-14B-Instruct",
          "qwen2.5", 48, 5120, 40, 8, 128, 13824, 152064, 32768, false, QWEN2),
    /* Qwen/Qwen2.5-32B-Instruct: 5120 / 27648 / 64 / 40 / 8, vocab 152064, untied. */
    ENTRY("qwen2.5:32b", "Qwen/Qwen2.5-32B-Instruct", "Qwen/Qwen2.5-32B|Qwen2.5-32B-Instruct",
          "qwen2.5", 64, 5120, 40, 8, 128, 27648, 152064, 32768, false, QWEN2),
    /* Qwen/Qwen2.5-72B-Instruct: 8192 / 29568 / 80 / 64 / 8, vocab 152064, untied. */
    ENTRY("qwen2.5:72b", "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen2.5-72B|Qwen2.5-72B-Instruct",
          "qwen2.5", 80, 8192, 64, 8, 128, 29568, 152064, 32768, false, QWEN2),

    /* ---- Qwen2.5-Coder: same shapes as the Qwen2.5 models of the same size.
     * Qwen/Qwen2.5-Coder-7B-Instruct: 3584 / 18944 / 28 / 28 / 4, vocab 152064, 32768, untied. */
    ENTRY("qwen2.5-coder:7b", "Qwen/Qwen2.5-Coder-7B-Instruct",
          "qwen2.5-coder|Qwen/Qwen2.5-Coder-7B|Qwen2.5-Coder-7B-Instruct",
          "qwen2.5-coder", 28, 3584, 28, 4, 128, 18944, 152064, 32768, false, QWEN2),
    /* Qwen/Qwen2.5-Coder-14B-Instruct: 5120 / 13824 / 48 / 40 / 8, vocab 152064, untied. */
    ENTRY("qwen2.5-coder:14b", "Qwen/Qwen2.5-Coder-14B-Instruct",
          "Qwen/Qwen2.5-Coder-14B|Qwen2.5-Coder-14B-Instruct",
          "qwen2.5-coder", 48, 5120, 40, 8, 128, 13824, 152064, 32768, false, QWEN2),
    /* Qwen/Qwen2.5-Coder-32B-Instruct: 5120 / 27648 / 64 / 40 / 8, vocab 152064,
     * max_position_embeddings 32768, untied. */
    ENTRY("qwen2.5-coder:32b", "Qwen/Qwen2.5-Coder-32B-Instruct",
          "Qwen/Qwen2.5-Coder-32B|Qwen2.5-Coder-32B-Instruct",
          "qwen2.5-coder", 64, 5120, 40, 8, 128, 27648, 152064, 32768, false, QWEN2),

    /* ---- Qwen3 (q/k norms, explicit head_dim 128, vocab 151936, max_position_embeddings 40960).
     * Qwen/Qwen3-0.6B: 1024 / 3072 / 28 / 16 / 8, tied. */
    ENTRY("qwen3:0.6b", "Qwen/Qwen3-0.6B", "Qwen3-0.6B",
          "qwen3", 28, 1024, 16, 8, 128, 3072, 151936, 40960, true, QWEN3),
    /* Qwen/Qwen3-1.7B: 2048 / 6144 / 28 / 16 / 8, tied. */
    ENTRY("qwen3:1.7b", "Qwen/Qwen3-1.7B", "Qwen3-1.7B",
          "qwen3", 28, 2048, 16, 8, 128, 6144, 151936, 40960, true, QWEN3),
    /* Qwen/Qwen3-4B: 2560 / 9728 / 36 / 32 / 8, tied. */
    ENTRY("qwen3:4b", "Qwen/Qwen3-4B", "Qwen3-4B",
          "qwen3", 36, 2560, 32, 8, 128, 9728, 151936, 40960, true, QWEN3),
    /* Qwen/Qwen3-8B: 4096 / 12288 / 36 / 32 / 8, untied. */
    ENTRY("qwen3:8b", "Qwen/Qwen3-8B", "qwen3|Qwen3-8B",
          "qwen3", 36, 4096, 32, 8, 128, 12288, 151936, 40960, false, QWEN3),
    /* Qwen/Qwen3-14B: 5120 / 17408 / 40 / 40 / 8, untied. */
    ENTRY("qwen3:14b", "Qwen/Qwen3-14B", "Qwen3-14B",
          "qwen3", 40, 5120, 40, 8, 128, 17408, 151936, 40960, false, QWEN3),
    /* Qwen/Qwen3-32B: 5120 / 25600 / 64 / 64 / 8 (q is 8192 wide), untied. */
    ENTRY("qwen3:32b", "Qwen/Qwen3-32B", "Qwen3-32B",
          "qwen3", 64, 5120, 64, 8, 128, 25600, 151936, 40960, false, QWEN3),
    /* microsoft/phi-4 (Ollama's phi4:14b): hidden 5120, intermediate 17920, 40 layers, 40 heads,
     * 10 KV heads, vocab 100352, max_position_embeddings 16384, untied; llama.cpp converts
     * it as phi3 (fused QKV and gate-up). 14,659,507,200 parameters. */
    ENTRY("phi4:14b", "microsoft/phi-4", "phi4|phi-4", "phi", 40, 5120, 40, 10, 128, 17920, 100352, 16384, false, PHI3),
    /* Qwen/Qwen3-30B-A3B (Ollama's qwen3:30b-a3b): hidden 2048, intermediate 6144,
     * moe_intermediate_size 768, 48 layers, 32 heads, 4 KV heads, head_dim 128,
     * num_experts 128, num_experts_per_tok 8, norm_topk_prob true, vocab 151936,
     * max_position_embeddings 40960, untied. 30.5 B parameters, 3.3 B active. */
    MOE_ENTRY("qwen3:30b-a3b", "Qwen/Qwen3-30B-A3B", "qwen3:30b|Qwen3-30B-A3B|Qwen/Qwen3-30B-A3B-Instruct-2507",
              "qwen3", 48, 2048, 32, 4, 128, 6144, 151936, 40960, false, QWEN3MOE, 128, 8, 768),
    /* openai/gpt-oss-20b (Ollama's gpt-oss:20b): hidden_size 2880, intermediate_size 2880 (each
     * expert), 24 layers, 64 heads, 8 KV heads, head_dim 64, num_local_experts 32,
     * num_experts_per_tok 4, vocab_size 201088, max_position_embeddings 131072, sliding_window
     * 128 on layer_types "sliding_attention" (even layers), rope_theta 150000 with YaRN factor
     * 32 over 4096, tie_word_embeddings false. 20,914,757,184 parameters; published as
     * MXFP4 experts (the MXFP4_MOE mix). */
    MOE_SWA_ENTRY("gpt-oss:20b", "openai/gpt-oss-20b", "gpt-oss|gpt-oss-20b", "gpt-oss", 24, 2880, 64, 8, 64, 2880,
                  201088, 131072, false, GPT_OSS, 32, 4, 2880, 128, 2),

    /* ---- DeepSeek-R1 distilled into Qwen2.5 bases (architecture qwen2, max_position_embeddings
     * 131072, vocab 152064, untied). deepseek-ai/DeepSeek-R1-Distill-Qwen-7B: 3584 / 18944 / 28 / 28 / 4. */
    ENTRY("deepseek-r1:7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Qwen-7B",
          "deepseek-r1", 28, 3584, 28, 4, 128, 18944, 152064, 131072, false, QWEN2),
    /* deepseek-ai/DeepSeek-R1-Distill-Qwen-14B: 5120 / 13824 / 48 / 40 / 8. */
    ENTRY("deepseek-r1:14b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "DeepSeek-R1-Distill-Qwen-14B",
          "deepseek-r1", 48, 5120, 40, 8, 128, 13824, 152064, 131072, false, QWEN2),
    /* deepseek-ai/DeepSeek-R1-Distill-Qwen-32B: 5120 / 27648 / 64 / 40 / 8. */
    ENTRY("deepseek-r1:32b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "DeepSeek-R1-Distill-Qwen-32B",
          "deepseek-r1", 64, 5120, 40, 8, 128, 27648, 152064, 131072, false, QWEN2),

    /* ---- Gemma 2 (tied embeddings, vocab 256000, max_position_embeddings 8192,
     * sliding_window 4096 on every other layer).
     * google/gemma-2-9b-it: hidden 3584, intermediate 14336, 42 layers, 16 heads, 8 KV heads,
     * head_dim 256. */
    SWA_ENTRY("gemma2:9b", "google/gemma-2-9b-it", "gemma2|google/gemma-2-9b|gemma-2-9b-it",
              "gemma2", 42, 3584, 16, 8, 256, 14336, 256000, 8192, true, GEMMA2, 4096, 2, false),
    /* google/gemma-2-27b-it: hidden 4608, intermediate 36864, 46 layers, 32 heads, 16 KV heads,
     * head_dim 128. */
    SWA_ENTRY("gemma2:27b", "google/gemma-2-27b-it", "google/gemma-2-27b|gemma-2-27b-it",
              "gemma2", 46, 4608, 32, 16, 128, 36864, 256000, 8192, true, GEMMA2, 4096, 2, false),
    /* ---- Gemma 3 text (tied embeddings, vocab 262208, max_position_embeddings 131072,
     * sliding_window 1024, sliding_window_pattern 6, rope_local_base_freq 10000 on the
     * sliding layers, rope_theta 1e6 with linear scaling 8 on the global ones).
     * google/gemma-3-12b-it text_config: hidden 3840, intermediate 15360, 48 layers, 16 heads,
     * 8 KV heads, head_dim 256. */
    SWA_ENTRY("gemma3:12b", "google/gemma-3-12b-it", "google/gemma-3-12b-pt|gemma-3-12b-it",
              "gemma3", 48, 3840, 16, 8, 256, 15360, 262208, 131072, true, GEMMA3, 1024, 6, true),
    /* google/gemma-3-27b-it text_config: hidden 5376, intermediate 21504, 62 layers, 32 heads,
     * 16 KV heads, head_dim 128. */
    SWA_ENTRY("gemma3:27b", "google/gemma-3-27b-it", "google/gemma-3-27b-pt|gemma-3-27b-it",
              "gemma3", 62, 5376, 32, 16, 128, 21504, 262208, 131072, true, GEMMA3, 1024, 6, true),

    /* ---- Embedding models (encoders: no output head; `qfit embed`, /api/embed).
     * nomic-ai/nomic-embed-text-v1.5 (Ollama's nomic-embed-text): n_embd 768, n_inner 3072,
     * n_layer 12, n_head 12, vocab_size 30528 (the converter pads the vocabulary to it),
     * max_trained_positions 2048, rotary_emb_base 1000, SwiGLU, qkv_proj_bias false. */
    ENTRY("nomic-embed-text", "nomic-ai/nomic-embed-text-v1.5", "nomic-embed-text:v1.5|nomic-embed-text-v1.5",
          "nomic-embed", 12, 768, 12, 12, 64, 3072, 30528, 2048, true, NOMIC_BERT),
    /* mixedbread-ai/mxbai-embed-large-v1 (Ollama's mxbai-embed-large): BERT large, hidden_size
     * 1024, intermediate_size 4096, 24 layers, 16 heads, vocab_size 30522,
     * max_position_embeddings 512. 335,141,888 parameters of which the GGUF drops the pooler
     * (1,049,600). */
    ENTRY("mxbai-embed-large", "mixedbread-ai/mxbai-embed-large-v1", "mxbai-embed-large:335m|mxbai-embed-large-v1",
          "mxbai-embed", 24, 1024, 16, 16, 64, 4096, 30522, 512, true, BERT),
    /* sentence-transformers/all-MiniLM-L6-v2 (Ollama's all-minilm, all-minilm:22m): hidden_size
     * 384, intermediate_size 1536, 6 layers, 12 heads, vocab_size 30522,
     * max_position_embeddings 512. 22,713,216 parameters of which the GGUF drops the pooler
     * (147,840). */
    ENTRY("all-minilm", "sentence-transformers/all-MiniLM-L6-v2", "all-minilm:22m|all-MiniLM-L6-v2",
          "all-minilm", 6, 384, 12, 12, 32, 1536, 30522, 512, true, BERT),
};

size_t qfit_plan_catalog_count(void) { return sizeof catalog / sizeof catalog[0]; }

const qfit_plan_facts *qfit_plan_catalog_at(size_t i)
{
    return i < qfit_plan_catalog_count() ? &catalog[i] : NULL;
}

/* Does s equal one of the '|'-separated names in list (case-insensitive)? */
static bool in_list(const char *list, const char *s)
{
    size_t n = strlen(s);
    const char *p = list;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncasecmp(p, s, n) == 0) return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

const qfit_plan_facts *qfit_plan_catalog_find(const char *name)
{
    if (!name || !*name) return NULL;
    char buf[160];
    size_t n = strlen(name);
    if (n >= sizeof buf) return NULL;
    memcpy(buf, name, n + 1);
    /* Ollama's ":latest" tag is the family default, spelled without a tag here */
    if (n > 7 && strcasecmp(buf + n - 7, ":latest") == 0) buf[n - 7] = 0;
    for (size_t i = 0; i < qfit_plan_catalog_count(); i++) {
        const qfit_plan_facts *f = &catalog[i];
        if (strcasecmp(f->name, buf) == 0 || strcasecmp(f->hf, buf) == 0 || in_list(f->aliases, buf))
            return f;
    }
    return NULL;
}

/* ------------------------------------------------------------ tensors */

typedef struct {
    qfit_plan_tensor *t;
    size_t n, cap;
    bool oom;
} tlist;

static void add(tlist *l, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1)
{
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        qfit_plan_tensor *t = realloc(l->t, cap * sizeof *t);
        if (!t) { l->oom = true; return; }
        l->t = t;
        l->cap = cap;
    }
    qfit_plan_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = n_dims > 1 ? ne1 : 1;
    t->ne[2] = t->ne[3] = 1;
    t->type = -1;
}

static void addb(tlist *l, int blk, const char *suffix, uint32_t n_dims, int64_t ne0, int64_t ne1)
{
    char name[64];
    snprintf(name, sizeof name, "blk.%d.%s", blk, suffix);
    add(l, name, n_dims, ne0, ne1);
}

/* a stack of ne2 expert matrices [ne0, ne1] */
static void addb3(tlist *l, int blk, const char *suffix, int64_t ne0, int64_t ne1, int64_t ne2)
{
    addb(l, blk, suffix, 3, ne0, ne1);
    if (!l->oom) l->t[l->n - 1].ne[2] = ne2;
}

static int finish(tlist *l, qfit_plan_model *out, char *err, size_t err_len)
{
    if (l->oom) {
        free(l->t);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    out->tensors = l->t;
    out->n_tensors = l->n;
    for (size_t i = 0; i < l->n; i++) out->n_params += (uint64_t)(l->t[i].ne[0] * l->t[i].ne[1] * l->t[i].ne[2]);
    return 0;
}

/* An encoder's tensors (bert, nomic-bert), in the converter's order: the embeddings
 * (token, token type: 2 rows, BERT's absolute positions), their LayerNorm, then per
 * layer the attention, its LayerNorm, the FFN and its LayerNorm; no output. */
static int encoder_tensors(const qfit_plan_facts *f, const qfit_arch_info *ai, qfit_plan_model *out, char *err,
                           size_t err_len)
{
    const int64_t E = f->n_embd, Q = f->n_head * f->head_dim, KV = f->n_head_kv * f->head_dim;
    const bool absolute = ai->pos == QFIT_POS_ABSOLUTE, gated = ai->ffn_act != QFIT_FFN_GELU;
    tlist l = { 0 };
    add(&l, "token_embd.weight", 2, E, f->n_vocab);
    add(&l, "token_types.weight", 2, E, 2);
    if (absolute) add(&l, "position_embd.weight", 2, E, f->n_ctx_train);
    add(&l, "token_embd_norm.weight", 1, E, 1);
    add(&l, "token_embd_norm.bias", 1, E, 1);
    for (int b = 0; b < (int)f->n_layer; b++) {
        if (f->attn_bias) {
            addb(&l, b, "attn_q.weight", 2, E, Q);
            addb(&l, b, "attn_q.bias", 1, Q, 1);
            addb(&l, b, "attn_k.weight", 2, E, KV);
            addb(&l, b, "attn_k.bias", 1, KV, 1);
            addb(&l, b, "attn_v.weight", 2, E, KV);
            addb(&l, b, "attn_v.bias", 1, KV, 1);
        } else {
            addb(&l, b, "attn_qkv.weight", 2, E, Q + 2 * KV);
        }
        addb(&l, b, "attn_output.weight", 2, Q, E);
        if (f->attn_bias) addb(&l, b, "attn_output.bias", 1, E, 1);
        addb(&l, b, "attn_output_norm.weight", 1, E, 1);
        addb(&l, b, "attn_output_norm.bias", 1, E, 1);
        if (gated) addb(&l, b, "ffn_gate.weight", 2, E, f->n_ff);
        addb(&l, b, "ffn_up.weight", 2, E, f->n_ff);
        if (f->attn_bias) addb(&l, b, "ffn_up.bias", 1, f->n_ff, 1);
        addb(&l, b, "ffn_down.weight", 2, f->n_ff, E);
        if (f->attn_bias) addb(&l, b, "ffn_down.bias", 1, E, 1);
        addb(&l, b, "layer_output_norm.weight", 1, E, 1);
        addb(&l, b, "layer_output_norm.bias", 1, E, 1);
    }
    return finish(&l, out, err, err_len);
}

int qfit_plan_model_from_facts(const qfit_plan_facts *f, qfit_plan_model *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (!f) { snprintf(err, err_len, "no model facts"); return -1; }
    if (f->n_layer <= 0 || f->n_layer > 10000 || f->n_embd <= 0 || f->n_head <= 0 || f->n_head_kv <= 0 ||
        f->head_dim <= 0 || f->n_ff <= 0 || f->n_vocab <= 0 ||
        (f->n_expert > 0 && (f->n_expert_used < 1 || f->n_expert_used > f->n_expert || f->n_ff_exp <= 0))) {
        snprintf(err, err_len, "model '%s': invalid architecture facts", f->name);
        return -1;
    }
    snprintf(out->name, sizeof out->name, "%s", f->name);
    snprintf(out->arch, sizeof out->arch, "%s", f->arch);
    out->facts = f;
    out->n_layer = f->n_layer;
    out->n_embd = f->n_embd;
    out->n_head = f->n_head;
    out->n_head_kv = f->n_head_kv;
    out->head_dim_k = out->head_dim_v = f->head_dim;
    out->n_ff = f->n_ff;
    out->n_vocab = f->n_vocab;
    out->n_ctx_train = f->n_ctx_train;
    out->n_rot = f->head_dim;
    out->tied = f->tied;
    out->file_type = -1;
    /* llama.cpp's size classification where its mix rules use it (attn_v of
     * "70B" models gets Q5_K instead of Q3_K/Q4_K): the quantizer's own rule */
    out->n_expert = f->n_expert;
    out->n_expert_used = f->n_expert_used;
    out->n_ff_exp = f->n_ff_exp;
    out->n_swa = f->n_swa;
    out->swa_pattern = f->swa_pattern;
    out->swa_rope = f->swa_rope;
    out->is_70b = plan_mix_is_70b(f->arch, f->n_layer, f->n_head, f->n_head_kv, f->n_expert);
    /* the GGUF metadata llama.cpp's converter would write: mostly the vocabulary */
    out->metadata_bytes = (uint64_t)f->n_vocab * QFIT_PLAN_CATALOG_META_ENTRY_BYTES;
    out->metadata_estimated = true;

    const int64_t E = f->n_embd, Q = f->n_head * f->head_dim, KV = f->n_head_kv * f->head_dim;
    const qfit_arch_info *ai = qfit_arch_find(f->arch);
    if (ai && ai->embd_only) return encoder_tensors(f, ai, out, err, err_len);
    const bool fused = strcmp(f->arch, "phi3") == 0;   /* Q/K/V and gate/up stored fused */
    const bool oss = strcmp(f->arch, "gpt-oss") == 0;
    tlist l = { 0 };
    add(&l, "token_embd.weight", 2, E, f->n_vocab);
    if (f->rope_freqs) add(&l, "rope_freqs.weight", 1, f->head_dim / 2, 1);
    for (int b = 0; b < (int)f->n_layer; b++) {
        addb(&l, b, "attn_norm.weight", 1, E, 1);
        if (fused) {
            addb(&l, b, "attn_qkv.weight", 2, E, Q + 2 * KV);
        } else {
            addb(&l, b, "attn_q.weight", 2, E, Q);
            if (f->attn_bias) addb(&l, b, "attn_q.bias", 1, Q, 1);
            addb(&l, b, "attn_k.weight", 2, E, KV);
            if (f->attn_bias) addb(&l, b, "attn_k.bias", 1, KV, 1);
            addb(&l, b, "attn_v.weight", 2, E, KV);
            if (f->attn_bias) addb(&l, b, "attn_v.bias", 1, KV, 1);
        }
        addb(&l, b, "attn_output.weight", 2, Q, E);
        if (oss) {
            addb(&l, b, "attn_output.bias", 1, E, 1);
            addb(&l, b, "attn_sinks.weight", 1, f->n_head, 1);
        }
        if (f->qk_norm) {
            addb(&l, b, "attn_q_norm.weight", 1, f->head_dim, 1);
            addb(&l, b, "attn_k_norm.weight", 1, f->head_dim, 1);
        }
        if (f->post_norms) addb(&l, b, "post_attention_norm.weight", 1, E, 1);
        addb(&l, b, oss ? "post_attention_norm.weight" : "ffn_norm.weight", 1, E, 1);
        if (f->n_expert > 0) {   /* the router and the merged experts */
            addb(&l, b, "ffn_gate_inp.weight", 2, E, f->n_expert);
            if (oss) addb(&l, b, "ffn_gate_inp.bias", 1, f->n_expert, 1);
            addb3(&l, b, "ffn_gate_exps.weight", E, f->n_ff_exp, f->n_expert);
            addb3(&l, b, "ffn_up_exps.weight", E, f->n_ff_exp, f->n_expert);
            addb3(&l, b, "ffn_down_exps.weight", f->n_ff_exp, E, f->n_expert);
            if (oss) {   /* one bias row per expert */
                addb(&l, b, "ffn_gate_exps.bias", 2, f->n_ff_exp, f->n_expert);
                addb(&l, b, "ffn_up_exps.bias", 2, f->n_ff_exp, f->n_expert);
                addb(&l, b, "ffn_down_exps.bias", 2, E, f->n_expert);
            }
        } else if (fused) {
            addb(&l, b, "ffn_up.weight", 2, E, 2 * f->n_ff);
            addb(&l, b, "ffn_down.weight", 2, f->n_ff, E);
        } else {
            addb(&l, b, "ffn_gate.weight", 2, E, f->n_ff);
            addb(&l, b, "ffn_up.weight", 2, E, f->n_ff);
            addb(&l, b, "ffn_down.weight", 2, f->n_ff, E);
        }
        if (f->post_norms) addb(&l, b, "post_ffw_norm.weight", 1, E, 1);
    }
    add(&l, "output_norm.weight", 1, E, 1);
    if (!f->tied) add(&l, "output.weight", 2, E, f->n_vocab);
    return finish(&l, out, err, err_len);
}
