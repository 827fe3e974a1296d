// Sends CloudEvents to sharelog with the JavaScript CloudEvents SDK
// (npm package cloudevents) and its defaults: binary mode over HTTP, the id
// and time it sets itself. Run by TestJavaScriptSDK (cmd/sharelog/sdk_test.go):
//
//   node send.mjs disclosure <base URL>
//   SHARELOG_SECRET=... node send.mjs ack <base URL> <recipient> <notice>
//
// It prints sharelog's answer (the body of the response) on stdout.
import { createHmac } from "node:crypto";
import { CloudEvent, HTTP, emitterFor, httpTransport } from "cloudevents";

const [what, base, recipient, notice] = process.argv.slice(2);

async function main() {
  if (what === "disclosure") {
    const ev = new CloudEvent({
      type: "org.sharelog.disclosure.v1",
      source: "/jssdk/casework",
      id: "jssdk-disclosure-1",
      data: {
        subjects: [{ scheme: "dbs-ref", id: process.env.SHARELOG_PERSON }],
        recipient: "sdk-hook",
        categories: ["user.name"],
        purpose: "safeguarding.disclosure_check",
        lawfulBasis: "dpa-s35-2-b",
        regime: "dpa-part3",
        disclosedAt: new Date().toISOString(),
        disclosedBy: "jssdk",
        justification: "sent with the JavaScript SDK",
      },
    });
    const emit = emitterFor(httpTransport(new URL("/v1/events", base)));
    const res = await emit(ev);
    process.stdout.write(res.body);
    return;
  }
  if (what === "ack") {
    const ev = new CloudEvent({
      type: "org.sharelog.notice.ack.v1",
      source: "/" + recipient + "/notices",
      data: { notice, outcome: "done" },
    });
    // The signature covers the body the SDK sends: in binary mode, the data.
    const { body } = HTTP.binary(ev);
    const ts = Math.floor(Date.now() / 1000).toString();
    const sig = "v1=" + createHmac("sha256", process.env.SHARELOG_SECRET).update(ts + "." + body).digest("hex");
    const emit = emitterFor(httpTransport(new URL("/v1/recipients/" + recipient + "/acks", base)));
    const res = await emit(ev, { headers: { "Sharelog-Timestamp": ts, "Sharelog-Signature": sig } });
    process.stdout.write(res.body);
    return;
  }
  throw new Error("usage: send.mjs disclosure|ack <base URL> [recipient notice]");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
