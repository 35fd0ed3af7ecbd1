#pragma once
// Several inspection engines as one Inspector: the integrated rule set first, then external
// engines (ICAP services), each with its policy for when it cannot decide.
//
// Each message gets one Inspection per engine. Body bytes go to every engine still
// undecided; the first block wins. At the end each engine still undecided is asked for its
// final verdict in order, the next only when the previous allowed, so a block by the rule
// set never reaches an external engine. An engine that fails (Verdict::failed: an error, a
// timeout, unreachable) is handled by its on_error: block gives the rule
// "engine_unavailable" (the block page says the engine is unavailable; fail closed, the
// default), allow lets the message pass uninspected by it, with a note the log shows.
// An engine that modifies a request (Verdict::rewrite) passes it on in the chain's final
// verdict; the engines after it inspect the client's request as sent, and a second engine
// that also modifies it blocks the request (rule "rewrite_conflict").

#include "inspect/inspector.hpp"

#include <memory>
#include <string>
#include <vector>

namespace proxy::inspect {

enum class OnEngineError { block, allow };

struct Engine {
    std::string name;  // for logs and notes: "rules", "icap:av"
    std::shared_ptr<const Inspector> inspector;
    OnEngineError on_error = OnEngineError::block;
};

class EngineChain final : public Inspector {
public:
    explicit EngineChain(std::vector<Engine> engines);
    std::unique_ptr<Inspection> begin(const MessageInfo& info) const override;

private:
    std::vector<Engine> engines_;
};

}  // namespace proxy::inspect
