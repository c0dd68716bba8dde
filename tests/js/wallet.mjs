// Plays a wallet (the DCC's Learner Credential Wallet, or any VC-API wallet) against the app on loopback, with the
// Digital Bazaar libraries those wallets and the W3C test suites are built on, and checks credentials with them.
//
// Reads a plan (JSON) on stdin: {"base": "http://127.0.0.1:PORT", "contextsDir": "...", "steps": [...]}, runs every
// step in order and prints one JSON result per step (an array) on stdout. tests/test_wallet_js.py writes the plan
// and asserts on the results. Steps:
//   {"name", "do": "lcw", "deepLink", "suite", "domain"?, "key"?, "signer"?, "method"?}
//       the LCW deep-link flow: sign a DIDAuth presentation with the link's challenge, POST it to vc_request_url
//   {"name", "do": "vcapi", "interactionUrl", "suite", "domain"?, "key"?}
//       the VC-API flow: GET the interaction URL (JSON), POST {} to protocols.vcapi, answer the request
//   {"name", "do": "replay", "of"}           POST the presentation an earlier step sent, again
//   {"name", "do": "huge", "url", "bytes"}   POST a body of that many bytes
//   {"name", "do": "verify", "credential"}   check a credential (ours, or a CLR) and a tampered copy
//   {"name", "do": "sign", "credential", "suite", "key"?}
//       be another issuer: a did:key of its own becomes credential.issuer.id and signs the credential
//       (tests/test_displayer.py checks our verifier accepts it)
// "key" names a holder key (steps that share a name share the key); "signer" signs with another named key
// ("method": "signer" also puts that key's id in the proof, "holder" keeps the holder's id with the wrong key).
import fs from 'node:fs';
import path from 'node:path';

import * as vc from '@digitalbazaar/vc';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {Ed25519Signature2020} from '@digitalbazaar/ed25519-signature-2020';
import {Ed25519VerificationKey2020} from '@digitalbazaar/ed25519-verification-key-2020';
import * as didKey from '@digitalbazaar/did-method-key';
import didContext from 'did-context';
import multikeyContext from '@digitalbazaar/multikey-context';

const plan = JSON.parse(fs.readFileSync(0, 'utf8'));
const base = new URL(plan.base);

// JSON-LD contexts: the copies the app ships (credentials/contexts), never fetched
const SHIPPED = {
  'https://www.w3.org/ns/credentials/v2': 'credentials-v2.jsonld',
  'https://www.w3.org/2018/credentials/v1': 'credentials-v1.jsonld',
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json': 'ob-v3p0-3.0.3.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/extensions.json': 'ob-v3p0-extensions.json',
  'https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json': 'clr-v2p0-2.0.1.json',
  'https://w3id.org/security/suites/ed25519-2020/v1': 'ed25519-signature-2020-v1.jsonld',
  'https://w3id.org/security/data-integrity/v2': 'data-integrity-v2.jsonld',
};
const contexts = new Map();
for(const [url, file] of Object.entries(SHIPPED)) {
  contexts.set(url, JSON.parse(fs.readFileSync(path.join(plan.contextsDir, file), 'utf8')));
}
// DID documents' own contexts, from their npm packages
for(const [url, doc] of didContext.contexts) contexts.set(url, doc);
for(const [url, doc] of multikeyContext.contexts) contexts.set(url, doc);

const didKeyDriver = didKey.driver();
didKeyDriver.use({multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from});

const fetched = new Map();
async function fetchJson(url) {
  const target = new URL(url);
  if(target.host !== base.host) {  // loopback only: nothing here may reach the network
    throw new Error(`refusing to fetch ${url}`);
  }
  if(!fetched.has(url)) {
    const response = await fetch(target);
    if(!response.ok) throw new Error(`GET ${url}: ${response.status}`);
    fetched.set(url, await response.json());
  }
  return structuredClone(fetched.get(url));
}

async function documentLoader(url) {
  if(contexts.has(url)) {
    return {contextUrl: null, documentUrl: url, document: structuredClone(contexts.get(url))};
  }
  if(url.startsWith('did:key:')) {
    return {contextUrl: null, documentUrl: url, document: await didKeyDriver.get({url})};
  }
  if(url.startsWith('did:web:')) {
    // did:web:host%3Aport[:path...][#fragment] -> http(s)://host:port/.well-known/did.json (loopback: http)
    const [did, fragment] = url.split('#');
    const [, , host, ...segments] = did.split(':');
    const where = segments.length ? segments.map(decodeURIComponent).join('/') + '/did.json' :
      '.well-known/did.json';
    const document = await fetchJson(`${base.protocol}//${decodeURIComponent(host)}/${where}`);
    if(!fragment) return {contextUrl: null, documentUrl: url, document};
    const method = document.verificationMethod.find(m => m.id === url);
    if(!method) throw new Error(`${url} is not in the DID document`);
    return {contextUrl: null, documentUrl: url, document: {'@context': document['@context'], ...method}};
  }
  if(url.startsWith(base.origin + '/')) {
    return {contextUrl: null, documentUrl: url, document: await fetchJson(url)};
  }
  throw new Error(`document not allowed offline: ${url}`);
}

// ---- holder keys and presentations --------------------------------------------------------------------

const keys = new Map();
async function holderKey(name) {
  if(!keys.has(name)) {
    // one seed, two key objects: Multikey for eddsa-rdfc-2022, Ed25519VerificationKey2020 for its suite
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const multikey = await Ed25519Multikey.generate({seed});
    const did = `did:key:${multikey.publicKeyMultibase}`;
    multikey.controller = did;
    multikey.id = `${did}#${multikey.publicKeyMultibase}`;
    const key2020 = await Ed25519VerificationKey2020.generate({seed, controller: did, id: multikey.id});
    if(key2020.publicKeyMultibase !== multikey.publicKeyMultibase) throw new Error('seeded keys differ');
    keys.set(name, {did, multikey, key2020});
  }
  return keys.get(name);
}

function suiteFor(suiteName, key, methodId) {
  if(suiteName === 'Ed25519Signature2020') {
    const signer = key.key2020.signer();
    signer.id = methodId;
    return new Ed25519Signature2020({signer});
  }
  const signer = key.multikey.signer();
  signer.id = methodId;
  return new DataIntegrityProof({signer, cryptosuite: eddsaRdfc2022});
}

async function didAuth(step, {challenge, domain}) {
  const holder = await holderKey(step.key ?? step.name);
  const signing = step.signer ? await holderKey(step.signer) : holder;
  const methodId = step.method === 'holder' ? holder.multikey.id : signing.multikey.id;
  // the LCW signs a VC 1.1 presentation with Ed25519Signature2020; DataIntegrityProof goes with VC 2.0
  const version = step.suite === 'Ed25519Signature2020' ? 1.0 : 2.0;
  const presentation = vc.createPresentation({holder: holder.did, version});
  const suite = suiteFor(step.suite, signing, methodId);
  const signed = await vc.signPresentation({presentation, suite, challenge, domain, documentLoader});
  return {holder, signed};
}

async function post(url, body) {
  const response = await fetch(url, {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch{
    json = {text: text.slice(0, 200)};
  }
  return {status: response.status, body: json};
}

// ---- credential checks ----------------------------------------------------------------------------------

const verifySuite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});

async function check(credential) {
  const result = await vc.verifyCredential({
    credential, suite: verifySuite, documentLoader,
    checkStatus: options => checkStatus({...options, suite: verifySuite}),
  });
  const errors = [];
  for(const error of [result.error, ...(result.results ?? []).map(r => r.error)]) {
    if(error) errors.push(...(error.errors ?? [error]).map(e => String(e.message ?? e)));
  }
  // vc.js reports whether the status check ran; the bits themselves say revoked (or suspended)
  const statuses = (result.statusResult?.results ?? []).map(r => ({
    purpose: r.credentialStatus?.statusPurpose, verified: r.verified, set: r.status,
  }));
  return {verified: result.verified, errors, statuses};
}

function tamper(credential) {
  const copy = structuredClone(credential);
  copy.name = `${copy.name} (with honours)`;
  return copy;
}

async function checkWithTamper(credential) {
  const genuine = await check(credential);
  const tampered = await check(tamper(credential));
  return {...genuine, tamperedVerified: tampered.verified, tamperedErrors: tampered.errors};
}

// ---- steps ---------------------------------------------------------------------------------------------

const sent = new Map();

async function run(step) {
  if(step.do === 'lcw') {
    const link = new URL(step.deepLink);
    const challenge = link.searchParams.get('challenge');
    const {holder, signed} = await didAuth(step, {challenge, domain: step.domain});
    sent.set(step.name, {url: link.searchParams.get('vc_request_url'), body: signed});
    const answer = await post(link.searchParams.get('vc_request_url'), signed);
    const result = {holder: holder.did, ...answer};
    if(answer.status === 200) result.check = await checkWithTamper(answer.body);
    return result;
  }
  if(step.do === 'vcapi') {
    const interaction = await fetch(step.interactionUrl, {headers: {Accept: 'application/json'}});
    const {protocols} = await interaction.json();
    const opened = await post(protocols.vcapi, {});
    if(opened.status !== 200) return {opened};
    const request = opened.body.verifiablePresentationRequest;
    const {holder, signed} = await didAuth(step, {
      challenge: request.challenge, domain: step.domain ?? request.domain,
    });
    const endpoint = request.interact.service[0].serviceEndpoint;
    sent.set(step.name, {url: endpoint, body: {verifiablePresentation: signed}});
    const answer = await post(endpoint, {verifiablePresentation: signed});
    const result = {holder: holder.did, request, ...answer};
    if(answer.status === 200) {
      result.check = await checkWithTamper(answer.body.verifiablePresentation.verifiableCredential[0]);
    }
    return result;
  }
  if(step.do === 'replay') {
    const earlier = sent.get(step.of);
    return post(earlier.url, earlier.body);
  }
  if(step.do === 'huge') {
    return post(step.url, JSON.stringify({padding: 'x'.repeat(step.bytes)}));
  }
  if(step.do === 'verify') {
    return {check: await checkWithTamper(step.credential)};
  }
  if(step.do === 'sign') {
    const issuer = await holderKey(step.key ?? step.name);
    const credential = structuredClone(step.credential);
    credential.issuer = {...credential.issuer, id: issuer.did};
    const suite = suiteFor(step.suite, issuer, issuer.multikey.id);
    const signed = await vc.issue({credential, suite, documentLoader});
    const verifier = step.suite === 'Ed25519Signature2020' ? new Ed25519Signature2020() : verifySuite;
    const own = await vc.verifyCredential({credential: signed, suite: verifier, documentLoader});
    return {did: issuer.did, signed, verified: own.verified};
  }
  throw new Error(`unknown step ${step.do}`);
}

const results = [];
for(const step of plan.steps) {
  try {
    results.push({name: step.name, ...await run(step)});
  } catch(error) {
    results.push({name: step.name, crashed: String(error.stack ?? error)});
  }
}
process.stdout.write(JSON.stringify(results));
