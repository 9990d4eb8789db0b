"""How fast each catalogued local model is here: load, memory, first token, tokens/s, and the gateway beside it.

Each (model, thread count) pair runs in a fresh Python process, so its memory figures are its own.
The model file is read once beforehand, so load times are for a file in the OS cache. The model
is driven through the real backend (`LocalGGUFBackend`, streaming), greedy:

- load: `backend.load()` (llama.cpp's own load, shown apart, plus the backend's set-up);
  resident memory (VmRSS) and its peak (VmHWM) from /proc/self/status after the load and after
  all the generation below;
- time to first chunk, after one short warm-up call: *cold*, a ~400-token system prompt (a support
  brief or a tool list) never seen before; *cached*, the same system prompt again with another
  user question (llama.cpp keeps the evaluated prefix); *alternating*, two long system prompts
  taking turns, so each call finds the other one in llama.cpp's context and its own prefix in
  the backend's `PromptCache` (the cache hits are counted to show it);
- speed: generation tokens/s between the first and the last text chunk of a ~128-token free-text
  answer; prompt tokens/s as the cold prompt's tokens over its time to first chunk.

Medians over --reps repetitions. Then, per model, the gateway (`hybridlm serve`, local tier only,
a FAQ file for `hybrid/support`): /healthz latency and the latency of a FAQ question (answered from
the knowledge base, no model call), asked word for word (its vector is still in the encoder's
recent-text cache from loading the FAQ file) and in lower case without its question mark (which
MiniLM must embed; each probe asks a different entry), with the gateway idle, and again while
8 chat requests (64 tokens each, sent again as each returns) keep the model busy: one generating,
the others queued behind it. Probes go one after another from one client. The gateway's model
runs at the largest of --threads unless --gateway-threads says otherwise.

Run: python benchmarks/local_models.py [--models smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b]
     [--threads 1,2] [--reps 5] [--skip-gateway] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from hybridlm.config import load_config
from hybridlm.models import local_gguf
from hybridlm.models.base import BackendContext, GenerationParams
from hybridlm.models.catalogue import CATALOGUE
from hybridlm.models.local_gguf import LocalGGUFBackend, LocalOptions
from hybridlm.models.manager import MODELS_DIR_ENV, ModelError, ModelManager, models_dir

from machine import describe, print_table  # benchmarks/machine.py: run as a script, its folder is on the path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.servers import start_gateway, stop  # noqa: E402

RESULT_MARK = "RESULT "  # the line a measuring process prints its figures on
WARMUP_QUESTION = "Say hello."
TTFT_TOKENS = 4  # a first-token call needs one; a few more leave the context as a real answer would

SUPPORT_BRIEF = """\
You are the customer support assistant of {desk}, an app-based bank. Follow these rules in every reply.

Tone: be polite, calm and brief. Use plain words, no jargon, and no more than three short paragraphs.

What you can do: explain how the app works (cards, transfers, top-ups, statements, limits and
fees), walk the customer through a setting step by step, and tell them where to find a form.
What you cannot do: see or change their account, move money, cancel a payment, unblock a card,
promise a refund, or give legal, tax or investment advice. When the customer needs one of these,
say that a colleague will take over, and ask for nothing but the reference shown in the app.

Security: never ask for a full card number, a PIN, a password or a one-time code. If the customer
sends one, tell them to delete the message and to change the PIN or password at once. If they
report a lost or stolen card, tell them to freeze it in the app (Cards, then Freeze) before
anything else, then to order a new one.

Fees: card payments in pounds are free; payments abroad cost 2% above 500 pounds a month on the
Standard plan and nothing on the Premium plan. Cash withdrawals are free up to 200 pounds a month,
then 2%. Transfers in pounds are free and usually arrive within two hours; international
transfers take one to three working days and show their fee before they are sent.

Disputes: a card payment the customer does not recognise can be disputed in the app within 120
days (Payments, then the payment, then Report a problem). Say that the money is not refunded at
once: the merchant has up to 45 days to answer.

If you do not know the answer, say so and offer a colleague. Do not make up fees, dates or rules.
"""

TOOL_LIST = """\
You are the assistant of {desk}, a travel desk. You can call these functions; call one only when
the request needs it and every required value is known, otherwise ask for what is missing.

search_flights(origin: string, destination: string, date: string YYYY-MM-DD, passengers: integer
= 1, cabin: one of economy, premium, business = economy): flights on that day, with prices.
book_flight(flight_id: string, passenger_names: list of strings, seat_preference: one of window,
aisle, none = none): books a flight found by search_flights; returns a booking reference.
cancel_booking(reference: string, reason: string): cancels a booking and says what is refunded.
search_hotels(city: string, check_in: string YYYY-MM-DD, nights: integer, guests: integer = 1,
max_price_per_night: number): hotels with rooms free for those nights.
book_hotel(hotel_id: string, room_type: string, guest_name: string): books a room; returns a
reference and the cancellation deadline.
get_weather(city: string, date: string YYYY-MM-DD): the forecast (temperature, rain, wind).
get_visa_rules(nationality: string, destination_country: string): whether a visa is needed, and
for how long a stay.
list_bookings(customer_id: string, upcoming_only: boolean = true): the customer's bookings.
request_refund(reference: string, amount: number, reason: string): asks finance for a refund;
refunds above 500 euros need a manager's approval, so say that they may take five working days.

Rules: dates are in the customer's local time. Prices are in euros unless the customer names a
currency. Never invent a flight, hotel or reference: only use what a function returned. When a
function fails, say so in one sentence and offer another way. Do not call book_flight or book_hotel before the
customer has confirmed the exact option and price in this conversation.
"""

QUESTIONS = [
    "How long does a transfer to Spain take?",
    "I lost my card this morning, what should I do?",
    "Can I get a refund for a hotel I cancelled?",
    "What does it cost to withdraw cash abroad?",
    "Is there a fee for paying in euros?",
    "Where do I find my statement for March?",
    "Do I need a visa for a week in Japan?",
    "My contactless payment was declined, why?",
    "How do I dispute a payment I do not recognise?",
    "Can I change my flight to next Tuesday?",
    "What is the baggage allowance in economy?",
    "How do I order a new physical card?",
]

GENERATION_PROMPT = ("Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. "
                     "Describe the place, the weather and what happens over several days.")

FAQ_TOPICS = [("What are the opening hours of the {town} branch?", "The {town} branch is open 9am to 5pm, Monday to Saturday."),
              ("Is there a cash machine at the {town} branch?", "Yes: the {town} branch has two cash machines, open all day."),
              ("Where can I park near the {town} branch?", "There is a public car park behind the {town} branch."),
              ("Does the {town} branch have step-free access?", "Yes: the {town} branch has a ramp and an accessible desk.")]
TOWNS = ["Aberdeen", "Bath", "Bristol", "Cambridge", "Cardiff", "Chester", "Derby", "Dundee", "Durham", "Exeter",
         "Glasgow", "Gloucester", "Hereford", "Inverness", "Lancaster", "Leeds", "Leicester", "Lincoln", "Liverpool",
         "Norwich", "Nottingham", "Oxford", "Perth", "Plymouth", "Preston", "Salisbury", "Sheffield", "Stirling",
         "Swansea", "Truro", "Wells", "Winchester", "Worcester", "York"]


def faq_entries(count: int) -> list[tuple[str, str]]:
    """`count` different (question, answer) entries, so that no probe repeats an earlier one."""
    out = []
    for i in range(count):
        question, answer = FAQ_TOPICS[i % len(FAQ_TOPICS)]
        town = TOWNS[i // len(FAQ_TOPICS) % len(TOWNS)]
        if i >= len(FAQ_TOPICS) * len(TOWNS):
            town += f" {i // (len(FAQ_TOPICS) * len(TOWNS)) + 1}"
        out.append((question.format(town=town), answer.format(town=town)))
    return out


def faq_yaml(entries: list[tuple[str, str]]) -> str:
    return "".join(f"- question: {json.dumps(q)}\n  answer: {json.dumps(a)}\n" for q, a in entries)


# --- one model at one thread count, in its own process -------------------------------------------

def memory_mb() -> dict[str, float]:
    """Resident memory now (VmRSS) and its peak so far (VmHWM), in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return {"rss_mb": round(values["VmRSS"], 1), "peak_rss_mb": round(values["VmHWM"], 1)}


async def timed_stream(backend: Any, messages: list[dict[str, str]], max_tokens: int) -> dict[str, float]:
    """One streamed answer: seconds to the first chunk, first and last text chunk, and token counts."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    start = time.perf_counter()
    first = first_text = last_text = None
    usage = None
    async for chunk in backend.stream(messages, params):
        now = time.perf_counter()
        if first is None:
            first = now
        if chunk.text:
            first_text = first_text or now
            last_text = now
        if chunk.usage is not None:
            usage = chunk.usage
    assert first is not None and usage is not None, "the stream ended without its final chunk"
    return {"ttft_s": first - start,
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "decode_s": (last_text - first_text) if first_text and last_text else 0.0}


def ask(system: str, question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


async def measure_model(name: str, threads: int, reps: int, gen_tokens: int, data_dir: Path) -> dict[str, Any]:
    before = memory_mb()
    llama_load: list[float] = []
    real_load_llama = local_gguf.load_llama

    def timed_load_llama(*args: Any, **kwargs: Any) -> Any:  # the share of the load that is llama.cpp's own
        start = time.perf_counter()
        try:
            return real_load_llama(*args, **kwargs)
        finally:
            llama_load.append(time.perf_counter() - start)

    local_gguf.load_llama = timed_load_llama
    backend = LocalGGUFBackend(LocalOptions(model=name, n_threads=threads), BackendContext(data_dir))
    try:
        start = time.perf_counter()
        model = backend.load()
        load_s = time.perf_counter() - start
        if backend.note:
            raise SystemExit(f"{name}: {backend.note}")
        after_load = memory_mb()
        warmup = await timed_stream(backend, [{"role": "user", "content": WARMUP_QUESTION}], TTFT_TOKENS)

        templates = (SUPPORT_BRIEF, TOOL_LIST)
        cold = [await timed_stream(backend, ask(templates[i % 2].format(desk=f"Desk {i + 1:03d}"), QUESTIONS[0]),
                                   TTFT_TOKENS) for i in range(reps)]
        seen = templates[(reps - 1) % 2].format(desk=f"Desk {reps:03d}")  # the last cold one, now live
        cached = [await timed_stream(backend, ask(seen, QUESTIONS[1 + i % (len(QUESTIONS) - 1)]), TTFT_TOKENS)
                  for i in range(reps)]

        pair = (SUPPORT_BRIEF.format(desk="Northwind"), TOOL_LIST.format(desk="Southgate"))
        for system in pair:  # each seen once: now one is live in llama.cpp and both are in the prompt cache
            await timed_stream(backend, ask(system, QUESTIONS[0]), TTFT_TOKENS)
        hits_before = model.cache.hits
        alternating = []
        for i in range(reps):
            for system in pair:
                alternating.append(await timed_stream(backend, ask(system, QUESTIONS[1 + i % (len(QUESTIONS) - 1)]),
                                                      TTFT_TOKENS))
        cache_hits = model.cache.hits - hits_before

        generation = [await timed_stream(backend, [{"role": "user", "content": GENERATION_PROMPT}], gen_tokens)
                      for _ in range(reps)]
        after_generation = memory_mb()
    finally:
        await backend.aclose()
        local_gguf.load_llama = real_load_llama

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    speeds = [(g["completion_tokens"] - 1) / g["decode_s"] for g in generation if g["decode_s"] > 0]
    return {
        "model": name, "threads": threads, "reps": reps,
        "load_s": round(load_s, 3), "llama_load_s": round(llama_load[0], 3) if llama_load else None,
        "memory_before_load": before, "memory_after_load": after_load, "memory_after_generation": after_generation,
        "first_call_ttft_ms": round(warmup["ttft_s"] * 1000, 1),
        "prompt_tokens": {"cold": int(median(cold, "prompt_tokens")), "cached": int(median(cached, "prompt_tokens")),
                          "alternating": int(median(alternating, "prompt_tokens"))},
        "ttft_ms": {"cold": round(median(cold, "ttft_s") * 1000, 1), "cached": round(median(cached, "ttft_s") * 1000, 1),
                    "alternating": round(median(alternating, "ttft_s") * 1000, 1)},
        "alternating_calls": len(alternating), "prompt_cache_hits": cache_hits,
        "prompt_tokens_per_s": round(median(cold, "prompt_tokens") / median(cold, "ttft_s"), 1),
        "generation_tokens_per_s": round(statistics.median(speeds), 2) if speeds else None,
        "generated_tokens": int(median(generation, "completion_tokens")),
        "generation_max_tokens": gen_tokens,
    }


def run_worker(args: argparse.Namespace) -> None:
    model, threads = args.worker
    result = asyncio.run(measure_model(model, int(threads), args.reps, args.gen_tokens, Path(args.data_dir)))
    print(RESULT_MARK + json.dumps(result), flush=True)


def measure_in_process(model: str, threads: int, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", model, str(threads), "--reps", str(args.reps),
           "--gen-tokens", str(args.gen_tokens), "--data-dir", str(data_dir)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{model} at {threads} threads failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_MARK):])


# --- the gateway beside a busy model -------------------------------------------------------------

def percentiles(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98] if len(ordered) > 1 else ordered[0]
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2), "p99_ms": round(p99, 2),
            "max_ms": round(ordered[-1], 2)}


async def probe(client: httpx.AsyncClient, url: str, probes: int, faq_every: int,
                questions: list[str]) -> dict[str, Any]:
    """`probes` /healthz calls one after another, and every `faq_every` of them a FAQ question (from
    `questions`, each asked once) twice: word for word, whose vector the encoder still holds from
    embedding the FAQ file, and in lower case without its question mark, which it must embed."""
    health: list[float] = []
    faq: dict[str, list[float]] = {"faq_exact": [], "faq_new_text": []}
    not_faq = 0
    saw_running = 0
    max_waiting = 0
    for i in range(probes):
        start = time.perf_counter()
        reply = await client.get(url + "/healthz")
        health.append((time.perf_counter() - start) * 1000)
        reply.raise_for_status()
        queue = reply.json()["tiers"]["slm"].get("queue", {})
        saw_running += bool(queue.get("running"))
        max_waiting = max(max_waiting, int(queue.get("waiting") or 0))
        if i % faq_every == 0:
            question = questions.pop()
            for kind, text in (("faq_exact", question), ("faq_new_text", question.lower().rstrip("?"))):
                body = {"model": "hybrid/support", "messages": [{"role": "user", "content": text}]}
                start = time.perf_counter()
                reply = await client.post(url + "/v1/chat/completions", json=body)
                faq[kind].append((time.perf_counter() - start) * 1000)
                reply.raise_for_status()
                not_faq += reply.json()["hybridlm"]["tier"] != "faq"
    return {"healthz": percentiles(health), **{kind: percentiles(ms) for kind, ms in faq.items()},
            "faq_not_from_kb": not_faq, "probes_with_model_running": saw_running, "max_waiting": max_waiting}


async def gateway_rounds(url: str, questions: list[str], probes: int, faq_every: int, chats: int,
                         chat_tokens: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=chats + 4, max_keepalive_connections=chats + 4)
    async with httpx.AsyncClient(limits=limits, timeout=600, trust_env=False) as client:
        warm = {"model": "slm", "messages": [{"role": "user", "content": WARMUP_QUESTION}], "max_tokens": 4}
        (await client.post(url + "/v1/chat/completions", json=warm)).raise_for_status()
        await probe(client, url, 4, 1, questions)  # a first few, not counted
        idle = await probe(client, url, probes, faq_every, questions)

        stop_chats = asyncio.Event()
        chat_ms: list[float] = []
        statuses: dict[int, int] = {}

        async def chat(index: int) -> None:
            n = 0
            while not stop_chats.is_set():
                question = QUESTIONS[(index + n) % len(QUESTIONS)]
                body = {"model": "slm", "max_tokens": chat_tokens, "temperature": 0.0,
                        "messages": [{"role": "user", "content": f"{question} Answer in detail."}]}
                start = time.perf_counter()
                reply = await client.post(url + "/v1/chat/completions", json=body)
                chat_ms.append((time.perf_counter() - start) * 1000)
                statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
                n += 1

        workers = [asyncio.ensure_future(chat(i)) for i in range(chats)]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until the model is running with the rest queued behind it
                queue = (await client.get(url + "/healthz")).json()["tiers"]["slm"].get("queue", {})
                if queue.get("running") and int(queue.get("waiting") or 0) >= chats - 1:
                    break
                await asyncio.sleep(0.05)
            start = time.perf_counter()
            busy = await probe(client, url, probes, faq_every, questions)
            busy["seconds"] = round(time.perf_counter() - start, 1)
        finally:
            stop_chats.set()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    busy["chats_answered"] = len(chat_ms)
    busy["chat_statuses"] = statuses
    busy["chat_p50_ms"] = round(statistics.median(chat_ms), 1) if chat_ms else None
    return {"idle": idle, "busy": busy}


def measure_gateway(model: str, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        faq = workdir / "faq.yaml"
        entries = faq_entries(4 + 2 * len(range(0, args.probes, args.faq_every)))
        faq.write_text(faq_yaml(entries), encoding="utf-8")
        config = {"tiers": {"slm": {"backend": "local", "model": model, "max_queue": 16, "n_threads": threads}},
                  "support": {"kb_files": [str(faq)]}}
        gateway = start_gateway(workdir / "gw", config)
        try:
            rounds = asyncio.run(gateway_rounds(gateway.url, [q for q, _ in entries], args.probes, args.faq_every,
                                                args.chats, args.chat_tokens))
        finally:
            stop(gateway.proc)
    return {"model": model, "threads": threads, "chats": args.chats, "chat_max_tokens": args.chat_tokens, **rounds}


# --- the run -------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"summary": describe(), "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "llama_cpp_python": metadata.version("llama_cpp_python"),
            "hybridlm": metadata.version("hybridlm"), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def installed_models(manager: ModelManager) -> list[str]:
    return [name for name in CATALOGUE if manager.status(name).installed or manager.status(name).joined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated, from: {', '.join(CATALOGUE)} (default: all installed)")
    parser.add_argument("--threads", default="1,2", help="comma-separated n_threads values")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each measurement (medians reported)")
    parser.add_argument("--gen-tokens", type=int, default=128, help="max_tokens of the generation-speed answer")
    parser.add_argument("--skip-gateway", action="store_true")
    parser.add_argument("--gateway-threads", type=int, help="n_threads of the gateway's model (default: the most of --threads)")
    parser.add_argument("--probes", type=int, default=200, help="/healthz requests per gateway round")
    parser.add_argument("--faq-every", type=int, default=4, help="one FAQ question every N /healthz requests")
    parser.add_argument("--chats", type=int, default=8, help="chat requests kept waiting for the model")
    parser.add_argument("--chat-tokens", type=int, default=64, help="max_tokens of each of those requests")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "THREADS"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return

    data_dir = load_config().resolved_data_dir()  # where `hybridlm models pull` puts models
    manager = ModelManager(models_dir(data_dir))
    os.environ[MODELS_DIR_ENV] = str(manager.models_dir)  # the gateways' data dirs are temporary: same models
    for key in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):  # a local tier only
        os.environ.pop(key, None)
    models = args.models.split(",") if args.models else installed_models(manager)
    unknown = [m for m in models if m not in CATALOGUE]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; catalogued: {', '.join(CATALOGUE)}")
    threads = [int(t) for t in args.threads.split(",")]
    info = machine()
    started = time.perf_counter()

    speed = []
    for model in models:
        try:
            path = manager.locate(model)  # joined and checked here, not inside a timed load
        except ModelError as err:
            parser.error(str(err))
        with path.open("rb") as handle:  # into the OS file cache, so every load reads it from memory
            while handle.read(8 << 20):
                pass
        for n in threads:
            speed.append(measure_in_process(model, n, args, data_dir))
            if not args.json:
                print(f"{model}, {n} thread(s): done in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    gateway_threads = args.gateway_threads or max(threads)
    gateway = [] if args.skip_gateway else [measure_gateway(model, gateway_threads, args) for model in models]
    seconds = round(time.perf_counter() - started, 1)

    if not args.json:
        print("\nLoad and memory (MB; peak = VmHWM)\n")
        print_table(["model", "threads", "load s", "llama.cpp load s", "RSS before load", "RSS after load",
                     "peak after load", "RSS after generation", "peak after generation"],
                    [[r["model"], r["threads"], f"{r['load_s']:.2f}", f"{r['llama_load_s']:.2f}",
                      f"{r['memory_before_load']['rss_mb']:.0f}", f"{r['memory_after_load']['rss_mb']:.0f}",
                      f"{r['memory_after_load']['peak_rss_mb']:.0f}", f"{r['memory_after_generation']['rss_mb']:.0f}",
                      f"{r['memory_after_generation']['peak_rss_mb']:.0f}"] for r in speed])
        print(f"\nTime to first token (ms, median of {args.reps}; alternating: {2 * args.reps} calls)\n")
        print_table(["model", "threads", "prompt tokens", "first call", "cold", "cached", "alternating",
                     "prompt cache hits"],
                    [[r["model"], r["threads"], r["prompt_tokens"]["cold"], f"{r['first_call_ttft_ms']:.0f}",
                      f"{r['ttft_ms']['cold']:.0f}", f"{r['ttft_ms']['cached']:.0f}",
                      f"{r['ttft_ms']['alternating']:.0f}", f"{r['prompt_cache_hits']}/{r['alternating_calls']}"]
                     for r in speed])
        print(f"\nSpeed (tokens/s, median of {args.reps}; greedy free text, max_tokens {args.gen_tokens})\n")
        print_table(["model", "threads", "generation tok/s", "tokens generated", "prompt tok/s"],
                    [[r["model"], r["threads"], r["generation_tokens_per_s"], r["generated_tokens"],
                      f"{r['prompt_tokens_per_s']:.0f}"] for r in speed])
        if gateway:
            print(f"\nGateway while the model is busy ({args.chats} chat requests of {args.chat_tokens} tokens waiting; "
                  f"ms; {args.probes} /healthz and 2 x {len(range(0, args.probes, args.faq_every))} FAQ requests a round)\n")
            print_table(["model", "threads", "state", "healthz p50", "healthz p99", "FAQ exact p50", "FAQ exact p99",
                         "FAQ new text p50", "FAQ new text p99", "FAQ answers not from the FAQ",
                         "probes with model running", "max waiting"],
                        [[g["model"], g["threads"], state, g[state]["healthz"]["p50_ms"], g[state]["healthz"]["p99_ms"],
                          g[state]["faq_exact"]["p50_ms"], g[state]["faq_exact"]["p99_ms"],
                          g[state]["faq_new_text"]["p50_ms"], g[state]["faq_new_text"]["p99_ms"],
                          g[state]["faq_not_from_kb"],
                          f"{g[state]['probes_with_model_running']}/{g[state]['healthz']['n']}",
                          g[state]["max_waiting"]]
                         for g in gateway for state in ("idle", "busy")])
        print(f"\ntotal: {seconds} s")
    settings = {**{k: v for k, v in vars(args).items() if k not in ("worker", "data_dir")}, "models": models,
                "threads": threads, "gateway_threads": None if args.skip_gateway else gateway_threads}
    print(json.dumps({"machine": info, "settings": settings,
                      "speed": speed, "gateway": gateway, "seconds": seconds}))


if __name__ == "__main__":
    main()
