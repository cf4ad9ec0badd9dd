/* The qfit command line: one function per subcommand (src/cli/cmd_<name>.c).
 * Each receives argv with argv[0] = the subcommand name and returns the exit status.
 * The CLI is a thin layer over libqfit: parsing arguments, printing results. */
#ifndef QFIT_CLI_COMMANDS_H
#define QFIT_CLI_COMMANDS_H

int qfit_cmd_inspect(int argc, char **argv);
int qfit_cmd_quantize(int argc, char **argv);
int qfit_cmd_imatrix(int argc, char **argv);
int qfit_cmd_synth(int argc, char **argv);
int qfit_cmd_tokenize(int argc, char **argv);
int qfit_cmd_run(int argc, char **argv);
int qfit_cmd_ppl(int argc, char **argv);
int qfit_cmd_eval(int argc, char **argv);
int qfit_cmd_embed(int argc, char **argv);
int qfit_cmd_bench(int argc, char **argv);
int qfit_cmd_plan(int argc, char **argv);
int qfit_cmd_list(int argc, char **argv);
int qfit_cmd_rm(int argc, char **argv);
int qfit_cmd_cp(int argc, char **argv);
int qfit_cmd_import(int argc, char **argv);
int qfit_cmd_prune(int argc, char **argv);
int qfit_cmd_pull(int argc, char **argv);
int qfit_cmd_create(int argc, char **argv);
int qfit_cmd_show(int argc, char **argv);
int qfit_cmd_template(int argc, char **argv);
int qfit_cmd_serve(int argc, char **argv);
int qfit_cmd_ps(int argc, char **argv);
int qfit_cmd_stop(int argc, char **argv);
int qfit_cmd_batch(int argc, char **argv);
int qfit_cmd_worker(int argc, char **argv);

#endif
