package token

// The names of the claims and members of the two token formats. Mint writes
// them and the verifier reads them through these constants, so that the two
// sides cannot drift apart (TestMintVerifyRoundTrip checks that what Mint
// grants is what the verifier reads back).
const (
	// headerType is the JOSE header that tells the formats apart: access
	// tokens carry typAccessToken (RFC 9068 section 2.1), legacy ones "JWT".
	headerType         = "typ"
	typAccessToken     = "at+jwt"
	typAccessTokenMIME = "application/at+jwt"
	typLegacy          = "JWT"

	// Registered claims (RFC 7519 section 4.1, RFC 9068 section 2.2).
	claimIssuer    = "iss"
	claimSubject   = "sub"
	claimAudience  = "aud"
	claimExpiry    = "exp"
	claimNotBefore = "nbf"
	claimIssuedAt  = "iat"
	claimJWTID     = "jti"
	claimClientID  = "client_id"

	// claimMercure is the draft-07 claim, an object with the members below.
	claimMercure     = "mercure"
	mercurePublish   = "publish"
	mercureSubscribe = "subscribe"
	mercurePayload   = "payload"

	// claimDetails is the RFC 9396 claim of draft-08 access tokens: an array
	// of details with the members below, each topic an object with a match
	// and a match type.
	claimDetails   = "authorization_details"
	detailType     = "type"
	detailActions  = "actions"
	detailTopics   = "topics"
	detailPayload  = "payload"
	topicMatch     = "match"
	topicMatchType = "match_type"
)
