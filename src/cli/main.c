/* qfit — command-line entry point: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_env.h"
#include "cli/commands.h"
#include "qfit/version.h"


typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *usage;
} command;

static void usage(FILE *out, const command *cmds, size_t n)
{
    fprintf(out, "qfit — run the best model your machine can hold\n\nusage: qfit COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-10s %s\n", cmds[i].name, cmds[i].usage);
    fprintf(out, "\n'qfit COMMAND --help' shows a command's options; 'qfit --version' the version.\n");
}

int main(int argc, char **argv)
{
    const command cmds[] = {
        { "inspect",  qfit_cmd_inspect,  "MODEL.gguf | --devices      metadata, tensors, size, bits per weight; devices" },
        { "quantize", qfit_cmd_quantize, "IN.gguf OUT.gguf TYPE       quantize (Q4_K_M, Q8_0, ...)" },
        { "imatrix",  qfit_cmd_imatrix,  "MODEL.gguf TEXT.txt -o FILE importance matrix for quantize --imatrix" },
        { "synth",    qfit_cmd_synth,    "--shape S --type T OUT.gguf synthetic model of a real shape (speed/memory only)" },
        { "tokenize", qfit_cmd_tokenize, "MODEL.gguf TEXT|-f FILE     token ids and pieces" },
        { "run",      qfit_cmd_run,      "NAME [PROMPT] | FILE.gguf -p PROMPT  chat with a model / generate text" },
        { "embed",    qfit_cmd_embed,    "MODEL.gguf TEXT...|-f FILE  embeddings as JSON (pooled, L2-normalised)" },
        { "ppl",      qfit_cmd_ppl,      "MODEL.gguf TEXT.txt         perplexity (llama.cpp method)" },
        { "eval",     qfit_cmd_eval,     "MODEL.gguf TEXT.txt         quality/size/speed table of quantizations (+ SVG)" },
        { "bench",    qfit_cmd_bench,    "MODEL.gguf                  prompt / generation tokens per second" },
        { "plan",     qfit_cmd_plan,     "MODEL [--machine M]         what fits: weights, KV cache, compute, verdict" },
        { "list",     qfit_cmd_list,     "[PREFIX]                    models in the store (QFIT_MODELS)" },
        { "import",   qfit_cmd_import,   "FILE.gguf NAME [--link]     add a GGUF file to the store" },
        { "cp",       qfit_cmd_cp,       "SOURCE DESTINATION          copy a model under a new name" },
        { "rm",       qfit_cmd_rm,       "NAME...                     remove models (and blobs no model uses)" },
        { "prune",    qfit_cmd_prune,    "[--dry-run]                 remove unused blobs and partial files" },
        { "pull",     qfit_cmd_pull,     "NAME [--insecure] [--plan-only] download a model (resumable; plan first)" },
        { "create",   qfit_cmd_create,   "NAME -f Modelfile [--quantize T] create a model from a Modelfile" },
        { "show",     qfit_cmd_show,     "NAME [--modelfile|...]      a stored model's details, Modelfile, template" },
        { "template", qfit_cmd_template, "MODEL --messages FILE.json  the exact prompt the chat template renders" },
        { "serve",    qfit_cmd_serve,    "[--host ADDR] [--no-auth]   the Ollama/OpenAI HTTP API (QFIT_HOST)" },
        { "ps",       qfit_cmd_ps,       "                            models the running server has loaded" },
        { "stop",     qfit_cmd_stop,     "NAME                        unload a model from the running server" },
        { "batch",    qfit_cmd_batch,    "submit|status|results|cancel  batch jobs through a Redis queue" },
        { "worker",   qfit_cmd_worker,   "[--redis URL] [--model NAME]... run batch jobs from a Redis queue" },
    };
    const size_t n = sizeof cmds / sizeof cmds[0];
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout, cmds, n);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v") || !strcmp(argv[1], "version")) {
        printf("qfit version %s\n", QFIT_VERSION);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name) != 0) continue;
        if (qfit_cli_check_env() != 0) return 1;   /* a setting qfit cannot honour: say so first */
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "qfit: unknown command '%s'\n\n", argv[1]);
    usage(stderr, cmds, n);
    return 2;
}
