// The connection-quality levels (web/static/shared/quality.js) from getStats() counters.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { fingerprintOf, ufragOf } from "../static/shared/peer_path.js";
import { LIMITS, STALL_SAMPLES, assess, countersOf } from "../static/shared/quality.js";

/** A getStats() report as a Map, as browsers give it. */
function report({ bytes = 0, videoBytes = 0, received = 0, lost = 0, rtt = 0.02 } = {}) {
  return new Map([
    ["t", { id: "t", type: "transport", selectedCandidatePairId: "p" }],
    ["p", { id: "p", type: "candidate-pair", currentRoundTripTime: rtt, bytesReceived: bytes }],
    ["a", { id: "a", type: "inbound-rtp", kind: "audio", bytesReceived: bytes - videoBytes, packetsReceived: received, packetsLost: lost, timestamp: 1 }],
    ["v", { id: "v", type: "inbound-rtp", kind: "video", bytesReceived: videoBytes, packetsReceived: 0, packetsLost: 0, timestamp: 1 }],
  ]);
}

const sample = (fields) => countersOf(report(fields));
const BASE = { bytes: 100000, videoBytes: 90000, received: 1000, lost: 0 };
const step = (fields) => ({ ...BASE, ...fields });

describe("quality", () => {
  test("counters: bytes, packets, loss and the selected pair's RTT", () => {
    assert.deepEqual(sample({ bytes: 10, videoBytes: 4, received: 7, lost: 2, rtt: 0.123 }), {
      at: 1, bytes: 10, videoBytes: 4, received: 7, lost: 2, rttMs: 123, pairBytes: 10,
    });
  });

  test("good, fair and poor by RTT, loss and video bitrate", () => {
    const prev = sample(BASE);
    // 1 s later: 125 kB more (1,000 kbit/s, 900 of them video), 100 packets, none lost.
    const good = assess(prev, sample(step({ bytes: 225000, videoBytes: 202500, received: 1100 })), 0, 1000);
    assert.equal(good.level, "good");
    assert.equal(good.kbps, 1000);
    assert.equal(good.lossPct, 0);
    const slow = sample(step({ bytes: 225000, videoBytes: 202500, received: 1100, rtt: LIMITS.fairRttMs / 1000 }));
    assert.equal(assess(prev, slow, 0, 1000).level, "fair");
    const lossy = sample(step({ bytes: 225000, videoBytes: 202500, received: 1097, lost: 3 }));
    assert.equal(assess(prev, lossy, 0, 1000).lossPct, 3);
    assert.equal(assess(prev, lossy, 0, 1000).level, "fair");
    const thin = sample(step({ bytes: 115000, videoBytes: 100000, received: 1100 }));
    assert.equal(assess(prev, thin, 0, 1000).level, "fair"); // 80 kbit/s of video
    const far = sample(step({ bytes: 225000, videoBytes: 202500, received: 1100, rtt: LIMITS.poorRttMs / 1000 }));
    assert.equal(assess(prev, far, 0, 1000).level, "poor");
    const lossier = sample(step({ bytes: 225000, videoBytes: 202500, received: 1090, lost: 10 }));
    assert.equal(assess(prev, lossier, 0, 1000).level, "poor");
  });

  test("a camera that is off is not a poor connection", () => {
    const prev = sample(BASE);
    const audioOnly = sample(step({ bytes: 104000, videoBytes: 90000, received: 1050 }));
    assert.equal(assess(prev, audioOnly, 0, 1000).level, "good");
  });

  test("nothing received for two samples in a row: stalled, poor", () => {
    const prev = sample(BASE);
    const same = sample(BASE);
    assert.equal(assess(null, same, 0, 1000), null);
    const once = assess(prev, same, 0, 1000);
    assert.equal(once.idle, 1);
    assert.equal(once.stalled, false);
    const twice = assess(prev, same, once.idle, 1000);
    assert.equal(twice.idle, STALL_SAMPLES);
    assert.equal(twice.stalled, true);
    assert.equal(twice.level, "poor");
    const back = assess(prev, sample(step({ bytes: 225000, videoBytes: 202500, received: 1100 })), twice.idle, 1000);
    assert.equal(back.stalled, false);
    assert.equal(back.idle, 0);
  });
});

describe("peer path", () => {
  test("a description's connection (fingerprint) and ICE session (ufrag)", () => {
    const sdp = "v=0\r\na=ice-ufrag:Ab+1\r\na=fingerprint:sha-256 AA:BB\r\n";
    assert.equal(ufragOf(sdp), "Ab+1");
    assert.equal(fingerprintOf(sdp), "sha-256 AA:BB");
    assert.equal(ufragOf(""), null);
    assert.equal(fingerprintOf(undefined), null);
  });
});
