'use strict';
// The official Node fabric-ca-client against a devnet organisation's Fabric CA over HTTPS:
// cainfo, enroll the bootstrap admin, register a clerk with an ecert attribute, enroll it
// (requesting the attribute), reenroll, list identities, revoke, and enroll after revocation.
// Prints one JSON line of results (certificates as PEM).
//
//   node devnet/ca.js '{"url":..., "caName":..., "tlsCaCert":..., "mspId":..., "user":..., "attr":...}'

const fs = require('fs');
const FabricCAServices = require('fabric-ca-client');
const { User } = require('fabric-common');
const { run } = require('./connect');

function errorOf(err) {
    return String(err && err.message ? err.message : err);
}

run(async (input) => {
    const ca = new FabricCAServices(
        input.url,
        { trustedRoots: [fs.readFileSync(input.tlsCaCert)], verify: true },
        input.caName,
    );
    const out = { caName: ca.getCaName() };

    const adminEnrollment = await ca.enroll({ enrollmentID: 'admin', enrollmentSecret: 'adminpw' });
    out.adminCert = adminEnrollment.certificate;
    out.rootCertificate = adminEnrollment.rootCertificate;
    const admin = new User('admin');
    await admin.setEnrollment(adminEnrollment.key, adminEnrollment.certificate, input.mspId);

    const info = await ca.getCaInfo(admin);
    out.cainfo = { caName: info.caName, caChain: info.caChain ? info.caChain.toString() : null };

    try {
        await ca.enroll({ enrollmentID: 'admin', enrollmentSecret: 'wrong' });
        out.badSecretError = null;
    } catch (err) {
        out.badSecretError = errorOf(err);
    }

    out.secret = await ca.register({
        enrollmentID: input.user,
        role: 'client',
        affiliation: '',
        maxEnrollments: -1,
        attrs: [{ name: input.attr.name, value: input.attr.value, ecert: true }],
    }, admin);

    const enrollment = await ca.enroll({
        enrollmentID: input.user,
        enrollmentSecret: out.secret,
        attr_reqs: [{ name: input.attr.name, optional: false }],
    });
    out.userCert = enrollment.certificate;
    out.userKey = enrollment.key.toBytes();
    const user = new User(input.user);
    await user.setEnrollment(enrollment.key, enrollment.certificate, input.mspId);

    // No attribute requests: the identity's ecert attributes, as Fabric CA defaults.
    const re = await ca.reenroll(user);
    out.reenrolledCert = re.certificate;

    const identities = await ca.newIdentityService().getAll(admin);
    out.identities = identities.result.identities.map((i) => ({
        id: i.id,
        type: i.type,
        attrs: i.attrs,
    }));

    const one = await ca.newIdentityService().getOne(input.user, admin);
    out.identity = one.result;

    // A clerk has no registrar rights.
    try {
        await ca.register({ enrollmentID: `${input.user}-2`, role: 'client', affiliation: '' }, user);
        out.clerkRegisterError = null;
    } catch (err) {
        out.clerkRegisterError = errorOf(err);
    }

    const revoked = await ca.revoke({ enrollmentID: input.user, reason: 'keycompromise' }, admin);
    out.revoked = revoked.result.RevokedCerts || [];
    try {
        await ca.enroll({ enrollmentID: input.user, enrollmentSecret: out.secret });
        out.enrollAfterRevokeError = null;
    } catch (err) {
        out.enrollAfterRevokeError = errorOf(err);
    }
    return out;
});
