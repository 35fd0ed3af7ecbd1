// inspect/engine_chain: engines in order, the first block wins, the rule set's block never
// reaches a later engine, and an engine that fails (or never answers) is handled by its
// on_error policy. The engines here are scripted stand-ins for what a real external engine
// does (answer inline, answer later from another thread, fail, stay silent); the real one
// (ICAP against c-icap) has its own integration tests.

#include "inspect/engine_chain.hpp"
#include "inspect/rule_set.hpp"

#include "inspect_feed.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace proxy::inspect;
using inspect_testing::view;
using Catch::Matchers::ContainsSubstring;

namespace {

enum class Answer { allow, block, fail, rewrite, later_allow, later_block, later_fail, later_rewrite, never };

// An engine's modified request (an ICAP REQMOD answer from a redacting DLP engine).
Verdict rewritten(const std::string& body) {
    Verdict v = Verdict::allow("redacted");
    v.rule = "scripted-dlp";
    auto r = std::make_shared<RequestRewrite>();
    r->method = "POST";
    r->target = "/form";
    r->headers = {{"Host", "example.test"}, {"X-Redacted", "1"}};
    r->body = body;
    v.rewrite = std::move(r);
    return v;
}

// An engine whose final verdict is scripted; counts what it was asked.
class ScriptedEngine final : public Inspector {
public:
    explicit ScriptedEngine(Answer a, Verdict on_body = Verdict::undecided()) : answer_(a), on_body_(std::move(on_body)) {}
    std::unique_ptr<Inspection> begin(const MessageInfo&) const override {
        return std::make_unique<Scripted>(*this);
    }
    mutable std::atomic<int> bodies{0}, finishes{0};
    mutable std::vector<std::thread> threads;  // completions from other threads
    ~ScriptedEngine() override {
        for (auto& t : threads) t.join();
    }

private:
    class Scripted final : public Inspection {
    public:
        explicit Scripted(const ScriptedEngine& e) : e_(e) {}
        Verdict body(std::span<const std::uint8_t>) override {
            ++e_.bodies;
            return e_.on_body_;
        }
        void finish(Completion done) override {
            ++e_.finishes;
            auto later = [&e = e_, &done](Verdict v) {
                e.threads.emplace_back([done = std::move(done), v = std::move(v)]() mutable {
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    done(std::move(v));
                });
            };
            switch (e_.answer_) {
                case Answer::allow: done(Verdict::allow()); break;
                case Answer::block: done(Verdict::block("scripted-rule")); break;
                case Answer::fail: done(Verdict::failed("scripted", "connection refused")); break;
                case Answer::rewrite: done(rewritten("card=[redacted]")); break;
                case Answer::later_rewrite: later(rewritten("card=[redacted]")); break;
                case Answer::later_allow: later(Verdict::allow()); break;
                case Answer::later_block: later(Verdict::block("scripted-rule")); break;
                case Answer::later_fail: later(Verdict::failed("scripted", "timeout")); break;
                case Answer::never: break;
            }
        }

    private:
        const ScriptedEngine& e_;
    };
    Answer answer_;
    Verdict on_body_;
};

// The chain's final verdict, waiting (at most 2 s) for one that comes later.
std::optional<Verdict> final_of(Inspection& in) {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Verdict> out;
    int calls = 0;
    in.finish([&](Verdict v) {
        std::lock_guard lock(mu);
        ++calls;
        out = std::move(v);
        cv.notify_all();
    });
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(2), [&] { return out.has_value(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(calls <= 1);
    return out;
}

MessageInfo info() { return {}; }

}  // namespace

TEST_CASE("engine chain: every engine must allow; the first block wins, in order", "[inspect][chain]") {
    for (Answer second : {Answer::allow, Answer::later_allow}) {
        auto a = std::make_shared<ScriptedEngine>(Answer::allow);
        auto b = std::make_shared<ScriptedEngine>(second);
        EngineChain chain({{"one", a, OnEngineError::block}, {"two", b, OnEngineError::block}});
        auto in = chain.begin(info());
        CHECK_FALSE(in->body(view("some bytes")).decided());
        auto v = final_of(*in);
        REQUIRE(v);
        CHECK(v->kind == Verdict::Kind::allow);
        CHECK(a->bodies == 1);
        CHECK(b->finishes == 1);
    }
    // A block by the first engine: the second is never asked for its verdict.
    auto rules = std::make_shared<ScriptedEngine>(Answer::block);
    auto external = std::make_shared<ScriptedEngine>(Answer::allow);
    EngineChain chain({{"rules", rules, OnEngineError::block}, {"icap", external, OnEngineError::block}});
    auto in = chain.begin(info());
    auto v = final_of(*in);
    REQUIRE(v);
    CHECK(v->rule == "scripted-rule");
    CHECK(external->finishes == 0);
    // A later block by the second.
    auto b2 = std::make_shared<ScriptedEngine>(Answer::later_block);
    EngineChain chain2({{"rules", std::make_shared<ScriptedEngine>(Answer::allow), OnEngineError::block},
                        {"icap", b2, OnEngineError::allow}});
    auto in2 = chain2.begin(info());
    auto v2 = final_of(*in2);
    REQUIRE(v2);
    CHECK(v2->blocked());
}

TEST_CASE("engine chain: a block found in the body stops there; the real rule set as an engine", "[inspect][chain]") {
    proxy::InspectionSection config;
    auto rules = std::make_shared<RuleSetInspector>(config);
    auto external = std::make_shared<ScriptedEngine>(Answer::allow);
    EngineChain chain({{"rules", rules, OnEngineError::block}, {"icap", external, OnEngineError::block}});
    auto in = chain.begin(info());
    auto v = in->body(view("prefix " + eicar_test_string()));
    CHECK(v.blocked());
    CHECK(v.rule == "eicar");
    CHECK(external->finishes == 0);
}

TEST_CASE("engine chain: a failed engine blocks (engine_unavailable) or passes, by its policy", "[inspect][chain]") {
    for (Answer failing : {Answer::fail, Answer::later_fail}) {
        auto ok = std::make_shared<ScriptedEngine>(Answer::allow);
        auto broken = std::make_shared<ScriptedEngine>(failing);
        {
            EngineChain chain({{"rules", ok, OnEngineError::block}, {"icap:av", broken, OnEngineError::block}});
            auto in = chain.begin(info());
            auto v = final_of(*in);
            REQUIRE(v);
            CHECK(v->blocked());
            CHECK(v->rule == kEngineUnavailableRule);
            CHECK_THAT(v->note, ContainsSubstring("icap:av"));
        }
        {
            EngineChain chain({{"rules", ok, OnEngineError::block}, {"icap:av", broken, OnEngineError::allow}});
            auto in = chain.begin(info());
            auto v = final_of(*in);
            REQUIRE(v);
            CHECK(v->kind == Verdict::Kind::allow);
            CHECK_THAT(v->note, ContainsSubstring("uninspected by icap:av"));
        }
    }
    // A failure reported while the body streams is mapped the same way.
    auto streaming = std::make_shared<ScriptedEngine>(Answer::allow, Verdict::failed("x", "reset by peer"));
    EngineChain chain({{"dlp", streaming, OnEngineError::block}});
    auto in = chain.begin(info());
    auto v = in->body(view("bytes"));
    CHECK(v.blocked());
    CHECK(v.rule == kEngineUnavailableRule);
    CHECK_THAT(v.note, ContainsSubstring("dlp: reset by peer"));
}

TEST_CASE("engine chain: an engine that never answers is judged by its policy when the relay times out",
          "[inspect][chain]") {
    auto silent = std::make_shared<ScriptedEngine>(Answer::never);
    auto after = std::make_shared<ScriptedEngine>(Answer::allow);
    {
        EngineChain chain({{"icap:av", silent, OnEngineError::block}, {"icap:dlp", after, OnEngineError::allow}});
        auto in = chain.begin(info());
        std::optional<Verdict> got;
        in->finish([&](Verdict v) { got = std::move(v); });
        CHECK_FALSE(got);
        auto v = in->timed_out();
        CHECK(v.blocked());
        CHECK(v.rule == kEngineUnavailableRule);
        CHECK_THAT(v.note, ContainsSubstring("icap:av: no verdict in time"));
    }
    {
        EngineChain chain({{"icap:av", silent, OnEngineError::allow}, {"icap:dlp", after, OnEngineError::allow}});
        auto in = chain.begin(info());
        in->finish([](Verdict) { FAIL("no verdict expected"); });
        auto v = in->timed_out();
        CHECK(v.kind == Verdict::Kind::allow);
        CHECK_THAT(v.note, ContainsSubstring("uninspected by icap:av"));
        CHECK_THAT(v.note, ContainsSubstring("icap:dlp: not asked"));
    }
    // An engine alone, without a chain: the default timed_out() says it failed.
    auto in = silent->begin(info());
    CHECK(in->timed_out().kind == Verdict::Kind::failed);
}

TEST_CASE("engine chain: an engine's modified request is the final verdict; two that modify it conflict",
          "[inspect][chain]") {
    for (Answer a : {Answer::rewrite, Answer::later_rewrite}) {
        auto rules = std::make_shared<ScriptedEngine>(Answer::allow);
        auto dlp = std::make_shared<ScriptedEngine>(a, Verdict::undecided());
        auto av = std::make_shared<ScriptedEngine>(Answer::allow);
        EngineChain chain({{"rules", rules, OnEngineError::block}, {"icap:dlp", dlp, OnEngineError::block},
                           {"icap:av", av, OnEngineError::block}});
        auto in = chain.begin(info());
        CHECK_FALSE(in->body(view("card=4111111111111111")).decided());
        auto v = final_of(*in);
        REQUIRE(v);
        CHECK(v->kind == Verdict::Kind::allow);
        REQUIRE(v->rewrite);
        CHECK(v->rewrite->body == "card=[redacted]");
        CHECK(v->rule == "scripted-dlp");
        CHECK(av->finishes == 1);  // the engines after it are still asked
        CHECK_THAT(v->note, ContainsSubstring("icap:dlp: redacted"));
    }
    // A block after the rewrite still blocks.
    {
        EngineChain chain({{"icap:dlp", std::make_shared<ScriptedEngine>(Answer::rewrite), OnEngineError::block},
                           {"icap:av", std::make_shared<ScriptedEngine>(Answer::later_block), OnEngineError::block}});
        auto in = chain.begin(info());
        auto v = final_of(*in);
        REQUIRE(v);
        CHECK(v->blocked());
        CHECK_FALSE(v->rewrite);
    }
    // Two engines each modifying it: refused, never one of them silently dropped.
    EngineChain chain({{"icap:one", std::make_shared<ScriptedEngine>(Answer::rewrite), OnEngineError::block},
                       {"icap:two", std::make_shared<ScriptedEngine>(Answer::later_rewrite), OnEngineError::block}});
    auto in = chain.begin(info());
    auto v = final_of(*in);
    REQUIRE(v);
    CHECK(v->blocked());
    CHECK(v->rule == kRewriteConflictRule);
    CHECK_THAT(v->note, ContainsSubstring("icap:one and icap:two both modified the request"));
}
