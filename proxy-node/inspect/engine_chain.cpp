#include "inspect/engine_chain.hpp"

#include <mutex>

namespace proxy::inspect {

namespace {

// What the chain still needs of one message, shared with the completions it hands out (they
// may run after the relay gave up waiting, or on another thread).
struct ChainState {
    struct Part {
        const Engine* engine;
        std::unique_ptr<Inspection> inspection;
        bool done = false;  // allowed (or its failure allowed): nothing more needed of it
    };
    std::mutex mu;
    std::vector<Part> parts;
    std::string notes;      // engines that failed with on_error = allow, and allows with a note
    bool over_limit = false;  // an engine allowed past a scan limit
    std::shared_ptr<const RequestRewrite> rewrite;  // an engine's modified request
    std::string rewrote, rewrite_rule;              // by that engine, and its rule
    std::size_t next = 0;   // finish(): the engine asked last
    bool answered = false;  // `done` was called (or the relay timed out)
    Inspection::Completion done;

    // An engine's verdict mapped by its policy: block, allow (done), or undecided.
    Verdict map(Part& part, Verdict v) {
        if (v.kind == Verdict::Kind::failed) {
            const std::string what = part.engine->name + ": " + v.note;
            if (part.engine->on_error == OnEngineError::block)
                return Verdict::block(std::string(kEngineUnavailableRule), what);
            part.done = true;
            notes += (notes.empty() ? "" : "; ") + ("uninspected by " + what);
            return Verdict::allow();
        }
        if (v.kind == Verdict::Kind::allow) {
            if (v.rewrite) {
                // Later engines saw the client's request, not this one's; two that each
                // modify it cannot both be honoured.
                if (rewrite)
                    return Verdict::block(std::string(kRewriteConflictRule),
                                          rewrote + " and " + part.engine->name + " both modified the request");
                rewrite = v.rewrite;
                rewrote = part.engine->name;
                rewrite_rule = v.rule;
            }
            part.done = true;
            over_limit = over_limit || v.over_limit;
            if (!v.note.empty()) notes += (notes.empty() ? "" : "; ") + part.engine->name + ": " + v.note;
        }
        return v;
    }
    Verdict allowed() const {
        Verdict v = notes.empty() ? Verdict::allow() : Verdict::allow(notes);
        v.over_limit = over_limit;
        v.rewrite = rewrite;
        if (rewrite) v.rule = rewrite_rule;
        return v;
    }
};

// Asks engines from state->next on for their final verdicts, one after another.
void finish_from(const std::shared_ptr<ChainState>& state) {
    for (;;) {
        Inspection* ask = nullptr;
        {
            std::unique_lock lock(state->mu);
            if (state->answered) return;
            while (state->next < state->parts.size() && state->parts[state->next].done) ++state->next;
            if (state->next == state->parts.size()) {
                state->answered = true;
                auto done = std::move(state->done);
                const Verdict v = state->allowed();
                lock.unlock();
                done(v);
                return;
            }
            ask = state->parts[state->next].inspection.get();
        }
        // The engine may answer inline (then the loop goes on here) or later (then its
        // completion continues the chain on its thread).
        auto inline_answer = std::make_shared<bool>(false);
        auto in_call = std::make_shared<bool>(true);
        auto index = state->next;
        ask->finish([state, index, inline_answer, in_call](Verdict v) {
            std::unique_lock lock(state->mu);
            if (state->answered) return;
            Verdict mapped = state->map(state->parts[index], std::move(v));
            if (mapped.blocked()) {
                state->answered = true;
                auto done = std::move(state->done);
                lock.unlock();
                done(std::move(mapped));
                return;
            }
            state->parts[index].done = true;  // an allow, or an undecided taken as allow at the end
            if (*in_call) {
                *inline_answer = true;
                return;
            }
            lock.unlock();
            finish_from(state);
        });
        {
            std::lock_guard lock(state->mu);
            *in_call = false;
            if (!*inline_answer) return;  // it answers later
        }
    }
}

class ChainInspection final : public Inspection {
public:
    explicit ChainInspection(std::shared_ptr<ChainState> state) : state_(std::move(state)) {}

    Verdict body(std::span<const std::uint8_t> bytes) override {
        std::lock_guard lock(state_->mu);
        bool all_done = true;
        for (auto& part : state_->parts) {
            if (part.done) continue;
            Verdict v = state_->map(part, part.inspection->body(bytes));
            if (v.blocked()) return v;
            all_done = all_done && part.done;
        }
        // A modified request is a final verdict only (the relay must keep holding it).
        return all_done && !state_->rewrite ? state_->allowed() : Verdict::undecided();
    }

    bool ready(const std::function<void()>& wake) override {
        std::lock_guard lock(state_->mu);
        for (auto& part : state_->parts)
            if (!part.done && !part.inspection->ready(wake)) return false;
        return true;
    }

    void finish(Completion done) override {
        {
            std::lock_guard lock(state_->mu);
            state_->done = std::move(done);
            state_->next = 0;
        }
        finish_from(state_);
    }

    Verdict timed_out() override {
        std::lock_guard lock(state_->mu);
        state_->answered = true;
        auto& parts = state_->parts;
        std::size_t i = state_->next;
        while (i < parts.size() && parts[i].done) ++i;
        if (i == parts.size()) return state_->allowed();
        Verdict v = state_->map(parts[i], parts[i].inspection->timed_out());
        if (v.blocked()) return v;
        // Its failure is allowed; engines after it are not asked any more, which is a
        // failure of theirs too, by their own policies.
        for (std::size_t k = i + 1; k < parts.size(); ++k) {
            if (parts[k].done) continue;
            Verdict later = state_->map(parts[k], Verdict::failed(parts[k].engine->name, "not asked: an engine before it timed out"));
            if (later.blocked()) return later;
        }
        return state_->allowed();
    }

private:
    std::shared_ptr<ChainState> state_;
};

}  // namespace

EngineChain::EngineChain(std::vector<Engine> engines) : engines_(std::move(engines)) {}

std::unique_ptr<Inspection> EngineChain::begin(const MessageInfo& info) const {
    auto state = std::make_shared<ChainState>();
    state->parts.reserve(engines_.size());
    for (const auto& e : engines_)
        if (auto inspection = e.inspector->begin(info)) state->parts.push_back({&e, std::move(inspection), false});
    return std::make_unique<ChainInspection>(std::move(state));
}

}  // namespace proxy::inspect
