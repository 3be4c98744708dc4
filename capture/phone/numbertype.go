package phone

import (
	"regexp"
	"slices"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// numberType is phonenumbers.GetNumberType with each type's pattern
// compiled once and matched once. The library builds the anchored pattern
// string and looks it up in a locked cache twice per type for every
// number (two string concatenations, two lock round trips, two matches),
// which was most of the CPU of a bulk check of numbers not seen before
// (the first check after a restart). The decision is the library's own,
// in its order, over its metadata; TestNumberTypeMatchesLibrary holds the
// two to the same answers.
func numberType(num *phonenumbers.PhoneNumber) phonenumbers.PhoneNumberType {
	t := numberTypes()
	if t == nil {
		return phonenumbers.GetNumberType(num)
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	var md *phonenumbers.PhoneMetadata
	if region == "001" {
		md = t.nonGeo[num.GetCountryCode()]
	} else {
		md = t.regions[region]
	}
	if md == nil {
		return phonenumbers.UNKNOWN
	}
	return t.matcher(md).numberType(phonenumbers.GetNationalSignificantNumber(num))
}

// matcher returns md's compiled patterns, compiling them on first use (a
// region's take about a millisecond; all of them, a quarter of a second).
func (t *typeTables) matcher(md *phonenumbers.PhoneMetadata) *typeMatcher {
	if m, ok := t.compiled.Load(md); ok {
		return m.(*typeMatcher)
	}
	desc := func(d *phonenumbers.PhoneNumberDesc) descMatcher {
		return descMatcher{lengths: d.GetPossibleLength(), pattern: regexp.MustCompile("^(?:" + d.GetNationalNumberPattern() + ")$")}
	}
	m := &typeMatcher{general: desc(md.GetGeneralDesc()), premium: desc(md.GetPremiumRate()),
		tollFree: desc(md.GetTollFree()), sharedCost: desc(md.GetSharedCost()), voip: desc(md.GetVoip()),
		personal: desc(md.GetPersonalNumber()), pager: desc(md.GetPager()), uan: desc(md.GetUan()),
		voicemail: desc(md.GetVoicemail()), fixed: desc(md.GetFixedLine()), mobile: desc(md.GetMobile()),
		sameMobileAndFixed: md.GetSameMobileAndFixedLinePattern()}
	got, _ := t.compiled.LoadOrStore(md, m)
	return got.(*typeMatcher)
}

// descMatcher is one number type's description: its possible lengths and
// its anchored national number pattern.
type descMatcher struct {
	lengths []int32
	pattern *regexp.Regexp
}

// matches is the library's isNumberMatchingDesc.
func (d *descMatcher) matches(nsn string) bool {
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.pattern.MatchString(nsn)
}

type typeMatcher struct {
	general, premium, tollFree, sharedCost, voip, personal, pager, uan, voicemail, fixed, mobile descMatcher
	sameMobileAndFixed                                                                           bool
}

// numberType is the library's getNumberTypeHelper.
func (m *typeMatcher) numberType(nsn string) phonenumbers.PhoneNumberType {
	if !m.general.matches(nsn) {
		return phonenumbers.UNKNOWN
	}
	for _, c := range []struct {
		d *descMatcher
		t phonenumbers.PhoneNumberType
	}{{&m.premium, phonenumbers.PREMIUM_RATE}, {&m.tollFree, phonenumbers.TOLL_FREE}, {&m.sharedCost, phonenumbers.SHARED_COST},
		{&m.voip, phonenumbers.VOIP}, {&m.personal, phonenumbers.PERSONAL_NUMBER}, {&m.pager, phonenumbers.PAGER},
		{&m.uan, phonenumbers.UAN}, {&m.voicemail, phonenumbers.VOICEMAIL}} {
		if c.d.matches(nsn) {
			return c.t
		}
	}
	if m.fixed.matches(nsn) {
		if m.sameMobileAndFixed || m.mobile.matches(nsn) {
			return phonenumbers.FIXED_LINE_OR_MOBILE
		}
		return phonenumbers.FIXED_LINE
	}
	if !m.sameMobileAndFixed && m.mobile.matches(nsn) {
		return phonenumbers.MOBILE
	}
	return phonenumbers.UNKNOWN
}

type typeTables struct {
	regions  map[string]*phonenumbers.PhoneMetadata
	nonGeo   map[int32]*phonenumbers.PhoneMetadata
	compiled sync.Map // *phonenumbers.PhoneMetadata → *typeMatcher
}

// numberTypes indexes the library's metadata on first use; nil (the
// library answers) if it cannot be read.
var numberTypes = sync.OnceValue(func() *typeTables {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil || coll == nil {
		return nil
	}
	t := &typeTables{regions: map[string]*phonenumbers.PhoneMetadata{}, nonGeo: map[int32]*phonenumbers.PhoneMetadata{}}
	supported := phonenumbers.GetSupportedRegions()
	for _, md := range coll.GetMetadata() {
		switch region := md.GetId(); {
		case region == "001":
			if phonenumbers.GetSupportedGlobalNetworkCallingCodes()[int(md.GetCountryCode())] {
				t.nonGeo[md.GetCountryCode()] = md
			}
		case supported[region]:
			t.regions[region] = md
		}
	}
	return t
})

// WarmTypes prepares numberType for region's numbers, so the first
// bulk check after a start does not compile them.
func WarmTypes(region string) {
	if t := numberTypes(); t != nil && t.regions[region] != nil {
		t.matcher(t.regions[region])
	}
}
