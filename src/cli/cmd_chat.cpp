// aviary chat: a conversation that keeps the model's state between turns,
// interactive at a terminal and line-by-line scriptable through pipes.
#include <cstdio>
#include <random>

#include "cli/chat_terminal.h"
#include "cli/commands.h"
#include "model/chat.h"
#include "model/state_file.h"
#include "model/state_tune.h"
#include "util/error.h"

namespace aviary::cli {

namespace {

struct ChatCliOpts {
  std::string model, vocab, system, prompt, state_file, ban, think_length;
  bool think = false, no_think = false, stats = false, allow_other_weights = false;
  ChatOptions chat;
  CLI::Option* seed = nullptr;
  CLI::Option* prompt_given = nullptr;
};

constexpr const char* kHelp =
    "Commands:\n"
    "  /reset          start the conversation over (from --state if given)\n"
    "  /undo           take back the last reply (or reset, /system, /load)\n"
    "  /system TEXT    set the system prompt and start over (/system alone clears it)\n"
    "  /think MODE     on, off, plain (no think tags), or on with a length hint: short, medium, long\n"
    "  /save FILE      save the conversation's state\n"
    "  /load FILE      continue from a saved state (or a state-tune file)\n"
    "  /help           this list\n"
    "  /quit           leave (as does Ctrl-D)\n"
    "A line starting with // sends the rest as a message beginning with /.";

void add_flags(CLI::App& app, ChatCliOpts& o) {
  SamplerParams& s = o.chat.generation.sampling;
  app.add_option("-m,--model", o.model, "checkpoint (.pth or .safetensors)")->required();
  app.add_option("--vocab", o.vocab, "vocabulary (default: the one a GGUF model embeds, else found next to the model)");
  o.prompt_given = app.add_option("-p,--prompt", o.prompt, "answer this one message and exit");
  app.add_option("--system", o.system, "system prompt (the conversation's first turn)");
  auto* on = app.add_flag("--think", o.think, "G1 reasoning on: the reply opens with <think");
  app.add_flag("--no-think", o.no_think, "G1 reasoning off: the reply opens with an empty <think></think>")->excludes(on);
  app.add_option("--think-length", o.think_length, "with --think: ask for a short, medium or long thought")
      ->check(CLI::IsMember({"short", "medium", "long"}));
  app.add_option("--state", o.state_file, "start from this state: an Aviary state file or a state-tune .pth/.safetensors");
  app.add_flag("--allow-other-weights", o.allow_other_weights, "accept a state computed with other weights of the same shape");
  app.add_option("-n,--max-tokens", o.chat.generation.max_tokens, "longest reply, in tokens")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_flag("--stats", o.stats, "print tokens and tokens/s after each reply");
  // The official chat sampling defaults; the same flags as `aviary generate`.
  o.seed = add_sampling_flags(app, s, o.ban);
}

ThinkLength parse_think_length(const std::string& s) {
  if (s == "short") return ThinkLength::Short;
  if (s == "medium") return ThinkLength::Medium;
  if (s == "long") return ThinkLength::Long;
  return ThinkLength::Unspecified;
}

// A state for --state or /load: an Aviary state file (with its token
// history, when saved) or a state-tune checkpoint.
State load_any_state(const std::string& path, const Model& model, bool allow_other_weights, StateExtras& extras) {
  if (is_state_file(path)) return load_state_file(path, model, {allow_other_weights}, &extras);
  extras = {};
  return load_state_tune(path, model);
}

class ChatLoop {
 public:
  ChatLoop(const Model& model, ChatSession& session, ChatTerminal& term, const ChatCliOpts& o)
      : model_(model), session_(session), term_(term), opts_(o) {}

  // Answers `text`, streaming the reply.
  void say(const std::string& text) {
    term_.begin_reply();
    const ChatReply r = session_.reply(text, [&](std::string_view piece) {
      term_.write(piece);
      return true;
    });
    const bool stopped = r.generation.stop == StopReason::Cancelled;
    term_.write(stopped && term_.interactive() ? " " + term_.dim("[stopped]") + "\n" : "\n");
    if (opts_.stats) print_stats(r);
    if (term_.interactive()) term_.write("\n");
  }

  // Runs one /command; false when the chat should end.
  bool command(const std::string& line) {
    const size_t space = line.find(' ');
    const std::string name = line.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : trim(line.substr(space + 1));
    if (name == "/quit" || name == "/exit") return false;
    if (name == "/help") term_.note(kHelp);
    else if (name == "/reset") { session_.reset(); term_.note("(conversation reset)"); }
    else if (name == "/undo") term_.note(session_.undo() ? "(undone)" : "(nothing to undo)");
    else if (name == "/system") set_system(arg);
    else if (name == "/think") set_think(arg);
    else if (name == "/save") save(arg);
    else if (name == "/load") load(arg);
    else throw Error("unknown command " + name + " (/help lists them)");
    return true;
  }

 private:
  static std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
  }

  void set_system(const std::string& text) {
    session_.set_system(text);
    term_.note(text.empty() ? "(system prompt cleared; conversation restarted)"
                            : "(system prompt set; conversation restarted)");
  }

  void set_think(const std::string& mode) {
    if (mode == "off") {
      session_.set_thinking(false);
    } else if (mode == "plain") {
      session_.set_think_mode(ThinkMode::Plain);
    } else if (mode == "on" || mode == "short" || mode == "medium" || mode == "long") {
      session_.set_thinking(true);
      session_.set_think_length(parse_think_length(mode));  // "on": no length hint
    } else {
      throw Error("/think takes on, off, plain, short, medium or long");
    }
    term_.note("(thinking " + mode + ")");
  }

  void save(const std::string& path) {
    if (path.empty()) throw Error("/save needs a file name");
    StateExtras extras;
    extras.token_count = session_.token_count();
    if (extras.token_count == int64_t(session_.tokens().size())) {  // the whole history is known
      extras.tokens = session_.tokens();
      extras.text = session_.transcript();
    }
    save_state_file(path, model_, session_.state(), extras);
    term_.note("(state saved to " + path + ")");
  }

  void load(const std::string& path) {
    if (path.empty()) throw Error("/load needs a file name");
    StateExtras extras;
    State state = load_any_state(path, model_, opts_.allow_other_weights, extras);
    session_.replace_state(std::move(state), std::move(extras.tokens), extras.token_count);
    term_.note("(state loaded from " + path + "; /undo goes back)");
  }

  void print_stats(const ChatReply& r) const {
    const GenerationResult& g = r.generation;
    char line[160];
    std::snprintf(line, sizeof line, "[%lld prompt tokens in %.2f s; %zu reply tokens, %.1f tokens/s; stop: %s]",
                  (long long)g.prompt_tokens, g.prompt_seconds, g.tokens.size(),
                  g.generate_seconds > 0 ? double(g.tokens.size()) / g.generate_seconds : 0.0,
                  stop_reason_name(g.stop));
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", term_.dim(line).c_str());
  }

  const Model& model_;
  ChatSession& session_;
  ChatTerminal& term_;
  const ChatCliOpts& opts_;
};

// Reads lines until end of input or /quit. At a terminal an error is shown
// and the chat goes on; in a script it ends the run (exit status 1).
int run_loop(ChatLoop& loop, ChatTerminal& term) {
  while (const std::optional<std::string> line = term.read_line()) {
    const size_t first = line->find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    try {
      const bool is_command = (*line)[first] == '/' && line->compare(first, 2, "//") != 0;
      if (is_command) {
        if (!loop.command(line->substr(first))) break;
      } else {
        loop.say(line->compare(first, 2, "//") == 0 ? line->substr(first + 1) : *line);
      }
    } catch (const Error& e) {
      if (!term.interactive()) throw;
      term.error(e.what());
    }
  }
  return 0;
}

void print_banner(ChatTerminal& term, const ChatCliOpts& o, const Model& model) {
  term.note("aviary chat: " + o.model + " (" + model.config().arch_name() + ", " +
            std::to_string(model.config().n_layer) + " layers)\n/help lists the commands; Ctrl-C stops a reply; "
            "Ctrl-D or /quit leaves.");
}

}  // namespace

Action add_chat(CLI::App& app) {
  auto o = std::make_shared<ChatCliOpts>();  // its ChatOptions start with the official chat sampling
  add_flags(app, *o);
  return [=] {
    ChatOptions chat = o->chat;
    chat.system = o->system;
    chat.think = o->think ? ThinkMode::On : o->no_think ? ThinkMode::Off : ThinkMode::Plain;
    chat.think_length = parse_think_length(o->think_length);
    if (!o->think_length.empty() && chat.think == ThinkMode::Plain) chat.think = ThinkMode::On;
    chat.generation.sampling.banned_tokens = parse_id_list(o->ban, "--ban");
    if (o->seed->count() == 0) chat.generation.sampling.seed = std::random_device{}();

    const auto model = load_model(o->model);
    const auto tokenizer = model_tokenizer(o->vocab, o->model, *model);
    validate_sampler_params(chat.generation.sampling, int32_t(model->config().vocab_size));

    // One message with -p needs no terminal handling: Ctrl-C simply ends it.
    const bool one_shot = o->prompt_given->count() > 0;
    ChatTerminal term(!one_shot && ChatTerminal::detect_interactive());
    chat.generation.cancel = term.cancel_flag();
    ChatSession session(*model, *tokenizer, chat);
    if (!o->state_file.empty()) {
      StateExtras extras;
      State state = load_any_state(o->state_file, *model, o->allow_other_weights, extras);
      session.set_initial_state(std::move(state), std::move(extras.tokens), extras.token_count);
    }
    ChatLoop loop(*model, session, term, *o);
    if (one_shot) {
      loop.say(o->prompt);
      return 0;
    }
    if (term.interactive()) print_banner(term, *o, *model);
    return run_loop(loop, term);
  };
}

}  // namespace aviary::cli
