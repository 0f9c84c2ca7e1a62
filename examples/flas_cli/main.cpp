// flas: generate with (and steer) Gemma-2 models from the command line.
#include <cstdio>

#include "commands.hpp"
#include "flas/core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"flas — flow-based activation steering for Gemma-2 models"};
  app.require_subcommand(1);
  flas::cli::add_generate(app);
  flas::cli::add_steer(app);
  flas::cli::add_chat(app);
  flas::cli::add_train(app);
  flas::cli::add_eval(app);
  flas::cli::add_distill(app);
  flas::cli::add_trace(app);
  flas::cli::add_ablate(app);
  flas::cli::add_serve(app);
  flas::cli::add_vector(app);
  flas::cli::add_export_gguf(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const flas::Error& e) {
    std::fprintf(stderr, "flas: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flas: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
