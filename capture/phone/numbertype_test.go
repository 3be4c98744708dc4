package phone

import (
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// TestNumberTypeMatchesLibrary: numberType gives phonenumbers.GetNumberType's
// answer for every region's example numbers of every type and for numbers
// one digit away from them (each digit changed, one added, one dropped),
// which land on and around the edges of each pattern.
func TestNumberTypeMatchesLibrary(t *testing.T) {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	checked, kinds := 0, map[phonenumbers.PhoneNumberType]int{}
	check := func(cc int32, nsn string) {
		if nsn == "" || len(nsn) > 17 {
			return
		}
		n, err := strconv.ParseUint(nsn, 10, 64)
		if err != nil {
			return
		}
		num := &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &n}
		if nsn[0] == '0' {
			zero, zeros := true, int32(len(nsn)-len(strconv.FormatUint(n, 10)))
			num.ItalianLeadingZero, num.NumberOfLeadingZeros = &zero, &zeros
		}
		want, got := phonenumbers.GetNumberType(num), numberType(num)
		if want != got {
			t.Errorf("+%d %s: library %v, numberType %v", cc, nsn, want, got)
		}
		checked++
		kinds[got]++
	}
	for _, md := range coll.GetMetadata() {
		cc := md.GetCountryCode()
		for _, d := range []*phonenumbers.PhoneNumberDesc{md.GetFixedLine(), md.GetMobile(), md.GetTollFree(),
			md.GetPremiumRate(), md.GetSharedCost(), md.GetPersonalNumber(), md.GetVoip(), md.GetPager(),
			md.GetUan(), md.GetVoicemail()} {
			ex := d.GetExampleNumber()
			if ex == "" {
				continue
			}
			check(cc, ex)
			check(cc, ex+"5")
			check(cc, ex[:len(ex)-1])
			for i := range len(ex) {
				for _, c := range "0123456789" {
					check(cc, ex[:i]+string(c)+ex[i+1:])
				}
			}
		}
	}
	if checked < 10_000 || kinds[phonenumbers.MOBILE] == 0 || kinds[phonenumbers.FIXED_LINE] == 0 || kinds[phonenumbers.UNKNOWN] == 0 {
		t.Fatalf("too few or too alike numbers checked: %d %v", checked, kinds)
	}
}
