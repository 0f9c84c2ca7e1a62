// flas chat: an interactive loop; slash commands change the concept, flow time, steps, temperature,
// switch steering on/off, or compare steered and unsteered replies.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "backend_choice.hpp"
#include "steering_session.hpp"

namespace flas::cli {

namespace {
struct ChatArgs {
  std::string model_dir, flow;
  SteerSettings s;
};

constexpr const char* chat_help =
    "commands: /concept TEXT  /flowtime T  /steps N  /temp X  /on  /off  /compare  /help  /quit\n";

void run_chat(ChatArgs a) {
  SteeringSession session(a.model_dir, a.flow, a.s.layer);
  if (a.s.steps <= 0) a.s.steps = session.meta().steps;
  if (a.s.flowtime < 0) a.s.flowtime = session.meta().flowtime;
  bool on = true, compare = false;
  float T = a.s.flowtime;
  std::printf("flas chat — concept \"%s\", T = %g, N = %d. %s", a.s.concept_text.c_str(), double(T), a.s.steps, chat_help);
  std::string line;
  while (std::printf("> "), std::fflush(stdout), std::getline(std::cin, line)) {
    if (line.empty()) continue;
    if (line[0] == '/') {
      std::istringstream in(line);
      std::string cmd, rest;
      in >> cmd;
      std::getline(in >> std::ws, rest);
      try {
        if (cmd == "/quit" || cmd == "/exit") break;
        else if (cmd == "/concept" && !rest.empty()) a.s.concept_text = rest;
        else if (cmd == "/flowtime") T = std::stof(rest);
        else if (cmd == "/steps") a.s.steps = std::stoi(rest);
        else if (cmd == "/temp") a.s.temperature = std::stof(rest);
        else if (cmd == "/on") on = true;
        else if (cmd == "/off") on = false;
        else if (cmd == "/compare") compare = !compare;
        else { std::printf("%s", chat_help); continue; }
      } catch (const std::exception&) {
        std::printf("could not read a number from '%s'\n", rest.c_str());
        continue;
      }
      std::printf("[steering %s, concept \"%s\", T = %g, N = %d, temperature %g, compare %s]\n", on ? "on" : "off",
                  a.s.concept_text.c_str(), double(T), a.s.steps, double(a.s.temperature), compare ? "on" : "off");
      continue;
    }
    try {
      SteerSettings s = a.s;
      s.flowtime = on ? T : 0.0f;
      if (compare && on) {
        SteerSettings off = s;
        off.flowtime = 0;
        std::printf("[unsteered] ");
        session.reply(line, off, stdout);
        std::printf("\n[steered]   ");
      }
      session.reply(line, s, stdout);
      std::printf("\n");
    } catch (const flas::Error& e) {
      std::printf("error: %s\n", e.what());
    }
  }
}
}  // namespace

void add_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  a->s.steps = 0;
  auto* cmd = app.add_subcommand("chat", "Chat with a model, steered by a FLAS flow (reads messages from stdin)");
  cmd->add_option("--model", a->model_dir, "Hugging Face model folder")->required();
  add_precision_option(cmd);
  cmd->add_option("--flow", a->flow, "Flow checkpoint (.safetensors; its .json beside it gives layer, steps, T)")->required();
  cmd->add_option("--concept", a->s.concept_text, "The concept to steer towards")->required();
  cmd->add_option("--flowtime", a->s.flowtime, "Flow time T (default: the flow's)");
  cmd->add_option("--steps", a->s.steps, "Integration steps N (default: the flow's)");
  cmd->add_option("--layer", a->s.layer, "Steering layer (default: the flow's)");
  cmd->add_option("--max-new-tokens", a->s.max_new_tokens, "Most tokens per reply")->capture_default_str();
  cmd->add_option("--temperature", a->s.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--seed", a->s.seed, "Random seed")->capture_default_str();
  cmd->callback([a] { run_chat(*a); });
}

}  // namespace flas::cli
